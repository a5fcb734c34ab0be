// deferred.js: post a signed script to a deferred server and follow its job: the event
// stream where the browser and the network allow it, else polling of its result URL.
// A dependency-free ES module for web pages, e.g. a blog's runnable code samples.
//
//   import { runScript } from "./deferred.js";
//   const results = await runScript({
//     server: "https://deferred.example.com", project: "resume",
//     script, signature,                 // signature: `deferred sign FILE --key KEY`
//     onState: (state, detail) => { ... },
//   });
//
// States reported: "posting", "queued", "waiting_for_host", "running", then the job's end
// status ("succeeded", "failed", "timed_out", "cancelled", "error") with results.json.

const FINAL = new Set(["succeeded", "failed", "timed_out", "cancelled", "error"]);

export class DeferredError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "DeferredError";
    this.status = status;
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
  });

async function errorOf(response) {
  try {
    const body = await response.json();
    return new DeferredError(body.error || `HTTP ${response.status}`, response.status);
  } catch {
    return new DeferredError(`HTTP ${response.status}`, response.status);
  }
}

/** Posts the script; resolves to the server's answer {id, status, result_url, events_url}. */
export async function submitScript({ server, project, script, signature, interpreter, idempotencyKey, signal }) {
  const headers = { "Content-Type": "application/json" };
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  const body = { script, signature };
  if (interpreter) body.interpreter = interpreter;
  const url = `${server.replace(/\/+$/, "")}/projects/${encodeURIComponent(project)}/scripts`;
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), signal });
    if (response.status === 202) return response.json();
    // Rate and queue limits say when to come back; other refusals are final.
    if ((response.status === 429 || response.status === 503) && attempt < 3) {
      const wait = Number(response.headers.get("Retry-After")) || 5;
      await sleep(Math.min(wait, 60) * 1000, signal);
      continue;
    }
    throw await errorOf(response);
  }
}

/** Polls a result URL with backoff until results.json is there; resolves to it. */
export async function pollResults(resultURL, { onState = () => {}, signal, maxWaitMs = 6 * 3600 * 1000 } = {}) {
  let delay = 250;
  let last = "";
  const start = Date.now();
  while (Date.now() - start < maxWaitMs) {
    const response = await fetch(resultURL, { headers: { Accept: "application/json" }, signal, cache: "no-store" });
    if (response.status === 200) {
      const results = await response.json();
      onState(results.status, results);
      return results;
    }
    if (response.status !== 202) throw await errorOf(response);
    const { status } = await response.json();
    if (status !== last) {
      last = status;
      delay = 250;
      onState(status);
    }
    await sleep(delay, signal);
    delay = Math.min(delay * 1.5, 3000);
  }
  throw new DeferredError("gave up waiting for results.json", 0);
}

/**
 * Follows a job's event stream: `onState(status)` for each state change, `onOutput(stream,
 * text)` for its lines as they come. Resolves true at `done`, false when the stream cannot be
 * had (no EventSource, a proxy in the way, an error before any event): then poll instead.
 * EventSource itself reconnects after a drop, sending the last event id, so nothing is missed.
 */
export function followEvents(eventsURL, { onState = () => {}, onOutput = () => {}, signal } = {}) {
  if (typeof EventSource === "undefined" || !eventsURL) return Promise.resolve(false);
  return new Promise((resolve) => {
    const source = new EventSource(eventsURL);
    let heard = false;
    const end = (streamed) => { source.close(); resolve(streamed); };
    signal?.addEventListener("abort", () => end(false));
    source.addEventListener("state", (event) => { heard = true; onState(JSON.parse(event.data).status); });
    source.addEventListener("output", (event) => {
      heard = true;
      const { stream, text } = JSON.parse(event.data);
      onOutput(stream, text);
    });
    source.addEventListener("done", () => end(true));
    // Before any event, an error means no stream here; after, EventSource retries by itself.
    source.onerror = () => { if (!heard || source.readyState === EventSource.CLOSED) end(false); };
  });
}

/** Posts, then follows the event stream (or polls where there is none): the whole round trip. */
export async function runScript(options) {
  const onState = options.onState || (() => {});
  onState("posting");
  const answer = await submitScript(options);
  onState(answer.status);
  const streamed = await followEvents(answer.events_url, { onState, onOutput: options.onOutput, signal: options.signal });
  options.onFollow?.(streamed ? "events" : "polling");
  const results = await pollResults(answer.result_url, { onState: streamed ? () => {} : onState, signal: options.signal });
  if (streamed) onState(results.status, results);
  return results;
}

export const isFinal = (state) => FINAL.has(state);

/**
 * Wires every `[data-deferred-run]` button on the page: the button's `data-script` names
 * the element holding the script, `data-signature` the one holding its signature, and
 * `data-output` the element that shows what happens.
 */
export function wireButtons({ server, project, root = document } = {}) {
  for (const button of root.querySelectorAll("[data-deferred-run]")) {
    button.addEventListener("click", async () => {
      const text = (id) => root.getElementById(id).textContent;
      const output = root.getElementById(button.dataset.output);
      const label = button.textContent;
      button.disabled = true;
      button.textContent = "Waiting…";
      const say = (line) => { output.textContent = line; };
      try {
        const results = await runScript({
          server: button.dataset.server || server,
          project: button.dataset.project || project,
          script: text(button.dataset.script),
          signature: text(button.dataset.signature).trim(),
          onState: (state) => {
            output.dataset.state = state;
            if (state === "posting") say("Sending the script…");
            else if (state === "queued") say("Queued…");
            else if (state === "waiting_for_host") say("Waking the build host…");
            else if (state === "running") say("Running…");
          },
          onFollow: (how) => { output.dataset.via = how; },
          onOutput: (stream, text) => {
            if (output.dataset.state === "running" && !output.dataset.live) { output.dataset.live = "1"; say(""); }
            output.textContent += text;
          },
        });
        output.dataset.state = results.status;
        delete output.dataset.live;
        const streams = [results.stdout, results.stderr].filter(Boolean).join("");
        output.textContent = results.status === "succeeded"
          ? streams
          : `${streams}${streams.endsWith("\n") || !streams ? "" : "\n"}[${results.status}${results.exit_status != null ? `, exit ${results.exit_status}` : ""}${results.error ? `: ${results.error}` : ""}]`;
      } catch (error) {
        output.dataset.state = "refused";
        output.textContent = `Could not run: ${error.message}`;
      } finally {
        button.disabled = false;
        button.textContent = label;
      }
    });
  }
}
