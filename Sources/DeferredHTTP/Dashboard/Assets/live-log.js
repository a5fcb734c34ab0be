// The job page's live log: follows the job's event stream from where the page's backlog
// ends, adds output and state changes as they come, and reloads once the job has ended so
// the page shows its results.json and artifacts.
const log = document.getElementById('log');
if (log && log.dataset.events) {
  const status = document.getElementById('status');
  const events = document.querySelector('#events tbody');
  const stream = new EventSource(log.dataset.events);
  stream.addEventListener('output', (message) => {
    const { stream: name, text } = JSON.parse(message.data);
    const following = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    const span = document.createElement('span');
    span.className = name;
    span.textContent = text;
    log.append(span);
    if (following) log.scrollTop = log.scrollHeight;
  });
  stream.addEventListener('state', (message) => {
    const { status: state, at, detail, host_state: host } = JSON.parse(message.data);
    status.textContent = state;
    status.className = `status ${state}`;
    const row = events.insertRow();
    row.insertCell().textContent = at.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
    const badge = row.insertCell().appendChild(document.createElement('span'));
    badge.className = `status ${state}`;
    badge.textContent = state;
    row.insertCell().textContent = [detail, host && `host ${host}`].filter(Boolean).join('; ');
  });
  stream.addEventListener('done', () => { stream.close(); location.reload(); });
}
