/// The shell scripts deferred runs on a build host. They are constants: every value they
/// need arrives as a positional parameter (see `ShellQuote.command`), so nothing from a
/// payload is ever part of a script's text.
///
/// Layout on the host: `~/.deferred/jobs/<job id>/` is the job's durable state: `artifacts/`,
/// `checkout/` (a push) or `script` and `work/` (a script), `phase`, `attempt` (the server's
/// attempt that started the command), `boot_id` (the host's boot when the job's start began),
/// `pgid` (the job's process group), `scope` (its cgroup, where the host lets deferred make one),
/// `stdout` and `stderr` (the command's output, appended as it comes), `exit` (its status,
/// written when it ends), `prepare_pid` (the start's shell, until the command runs) and
/// `collected` (the server has the job's files; the folder goes once it stored the end). `~/.deferred/cache/<project>.git` is a bare repository that keeps
/// fetched commits between jobs.
///
/// The command runs detached from the SSH channel that started it: a dropped connection or a
/// server that stops leaves it running, and the server follows its output files again from
/// where it got to (`reattach`).
enum RemoteScripts {
    /// Exit statuses of the start and reattach commands (the job's own status is in `exit`).
    enum Verdict {
        /// Followed to the end of the command.
        static let followed: Int32 = 0
        /// The job is not on the host any more: its folder is gone or the host rebooted.
        static let lost: Int32 = 90
        /// The command never started: the job stopped before its phase reached "running".
        static let neverStarted: Int32 = 91
        /// The command's processes are gone with no status written (killed with SIGKILL).
        static let vanished: Int32 = 92
        /// Preparing the job failed (checkout, upload, command lookup); stderr says why.
        static let prepareFailed: Int32 = 97
    }

    /// The follower: $1 and $2 are the bytes of stdout and stderr the server already has.
    /// Copies what the command adds to each file past them to the channel's stdout, in frames
    /// (`JobStream`: `o <n>` or `e <n>` and n bytes), until the command has ended and both files
    /// are drained; returns 0, or 92 when the command's processes vanished with no status. Then
    /// `collect_and_exit` sends the collect stream after it, in the same exec.
    private static let follower = collector + #"""
    follow() {
      o1=$1 o2=$2 idle=0
      # Each look costs the host two programs started (wc, sleep); the rest is the shell's own
      # (read, kill, test), so that a job followed for hours does not fork a hundred times a second.
      while :; do
        ended=0
        if [ -e "$job_dir/exit" ]; then ended=1
        else
          pg=
          { read -r pg < "$job_dir/pgid"; } 2>/dev/null
          [ -n "$pg" ] && ! kill -0 "-$pg" 2>/dev/null && [ ! -e "$job_dir/exit" ] && ended=2
        fi
        moved=0
        # "n1 stdout n2 stderr total": names without spaces, whatever the folder's path; no
        # here-document, which some shells write to a temporary file (and a full disk refuses).
        sizes=$(cd "$job_dir" && wc -c stdout stderr) || exit 90
        set -- $sizes
        n1=$1 n2=$3
        if [ "$n1" -gt "$o1" ]; then printf 'o %s\n' $((n1 - o1)); tail -c +$((o1 + 1)) "$job_dir/stdout" | head -c $((n1 - o1)); o1=$n1; moved=1; fi
        if [ "$n2" -gt "$o2" ]; then printf 'e %s\n' $((n2 - o2)); tail -c +$((o2 + 1)) "$job_dir/stderr" | head -c $((n2 - o2)); o2=$n2; moved=1; fi
        [ $ended = 1 ] && return 0
        [ $ended = 2 ] && return 92
        # Quiet: look again soon at first (most of a short job's wait is for its end, which
        # comes just after its last output or its start), then every 50 ms, and after 2 s of
        # quiet every 100 ms: a long quiet job's next line or end shows at most that late.
        if [ $moved = 1 ]; then idle=0; else
          idle=$((idle + 1))
          if [ $idle -le 2 ]; then nap=0.01; elif [ $idle -le 4 ]; then nap=0.02; elif [ $idle -le 44 ]; then nap=0.05; else nap=0.1; fi
          sleep $nap 2>/dev/null || sleep 1
        fi
      done
    }

    """#

    /// $1 job id, $2 attempt. Makes a fresh job folder and the helpers both kinds of job use;
    /// `run_detached` starts its arguments (as argv, never re-parsed) in a session and process
    /// group of their own, detached from the channel, and follows their output to the end.
    private static let jobFolder = follower + #"""
    set -u
    job_id=$1 attempt=$2
    root="$HOME/.deferred"
    job_dir="$root/jobs/$job_id"
    rm -rf "$job_dir" && mkdir -p "$job_dir/artifacts" "$root/cache" || { echo "deferred: cannot make $job_dir" >&2; exit 97; }
    # Until the command starts, this shell is the job: a reattach after a dropped connection
    # waits for it rather than take the job for never started while it still fetches.
    echo $$ > "$job_dir/prepare_pid"
    # The host's boot, told to a reattach: a job stopped before its command started (while its
    # script was sent, say) is found never started on this boot, and lost on a later one.
    cat /proc/sys/kernel/random/boot_id > "$job_dir/boot_id" 2>/dev/null || : > "$job_dir/boot_id"
    # Written whole or not at all: collect and reattach read it while the job runs.
    phase() { printf '%s\n' "$1" > "$job_dir/phase.part" && mv "$job_dir/phase.part" "$job_dir/phase"; }
    fail() { phase "$1"; printf 'deferred: %s\n' "$2" >&2; collect_and_exit 97; }
    # A cgroup v2 folder of the job's own, where the host lets us make one: every process the
    # job starts stays in it, a child that calls setsid included, so the kill script reaches
    # them all. Its path goes to "scope"; nothing is printed where cgroups are not ours to make.
    make_scope() {
      cg=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts 2>/dev/null)
      here=$(sed -n 's/^0:://p' /proc/self/cgroup 2>/dev/null)
      [ -n "$cg" ] && [ -n "$here" ] || return 0
      dir="$cg${here%/}/deferred-$job_id"
      mkdir "$dir" 2>/dev/null || return 0
      printf '%s\n' "$dir" > "$job_dir/scope"
      printf '%s' "$dir"
    }
    run_detached() {
      export DEFERRED_JOB_ID="$job_id" DEFERRED_ARTIFACTS="$job_dir/artifacts"
      scope=$(make_scope)
      : > "$job_dir/stdout" && : > "$job_dir/stderr" || fail running "cannot make the output files in $job_dir"
      printf '%s\n' "$attempt" > "$job_dir/attempt"
      phase running
      # setsid: the job leads a session and process group of its own, which the kill script
      # ends whole; in its scope (when there is one), so are processes that leave the group.
      # The wrapper outlives a SIGTERM to the group (its trap waits for the command), so the
      # command's status is written whatever ended it, short of SIGKILL. `exit` comes last: the
      # follower stops at it, and collect then finds the phase and resources in place.
      setsid sh -c 'echo $$ > "$0/pgid"; scope=$1; [ -z "$scope" ] || echo $$ > "$scope/cgroup.procs" 2>/dev/null; shift
        trap : TERM HUP
        "$@"; s=$?
        times > "$0/times" 2>/dev/null
        [ -n "$scope" ] && [ -r "$scope/memory.peak" ] && cat "$scope/memory.peak" > "$0/memory_peak" 2>/dev/null
        printf "finished\n" > "$0/phase.part" && mv "$0/phase.part" "$0/phase"
        printf "%s\n" "$s" > "$0/exit.part" && mv "$0/exit.part" "$0/exit"' \
        "$job_dir" "$scope" "$@" </dev/null >>"$job_dir/stdout" 2>>"$job_dir/stderr" &
      follow 0 0
      collect_and_exit $?
    }

    """#

    /// $1 job id, $2 attempt, $3 project, $4 clone URL, $5 commit, $6 ref, $7 command ("" =
    /// .deferred_server). Prepares the job folder, checks out the exact commit, and starts and
    /// follows the command. All in one exec: each exec costs the remote user's shell start-up.
    static let prepareAndRunPush = jobFolder + #"""
    project=$3 clone_url=$4 commit=$5 ref=$6 command=$7
    phase checkout
    cache="$root/cache/$project.git"
    (
      flock 9 || exit 1
      [ -d "$cache" ] || git init -q --bare "$cache" || exit 1
      git -C "$cache" cat-file -e "$commit^{commit}" 2>/dev/null && exit 0
      git -C "$cache" fetch -q --no-tags -- "$clone_url" "+$commit:refs/deferred/$commit" 2>/dev/null \
        || git -C "$cache" fetch -q --no-tags -- "$clone_url" "+$ref:refs/deferred/$commit" || exit 1
      git -C "$cache" cat-file -e "$commit^{commit}"
    ) 9>"$root/cache/$project.lock" >"$job_dir/checkout.log" 2>&1 \
      || fail checkout "cannot fetch commit $commit from $clone_url: $(tail -c 2000 "$job_dir/checkout.log")"
    { git clone -q --no-checkout --shared "$cache" "$job_dir/checkout" \
      && git -C "$job_dir/checkout" checkout -q --detach "$commit"; } >>"$job_dir/checkout.log" 2>&1 \
      || fail checkout "cannot check out $commit: $(tail -c 2000 "$job_dir/checkout.log")"
    cd "$job_dir/checkout" || fail checkout "no checkout folder"
    if [ -z "$command" ]; then
      [ -f .deferred_server ] || fail command "the project sets no command and commit $commit has no .deferred_server file"
      command=$(cat .deferred_server)
      [ -n "$command" ] || fail command "the .deferred_server file of commit $commit is empty"
    fi
    export DEFERRED_COMMIT="$commit" DEFERRED_REF="$ref"
    run_detached sh -c "$command"
    """#

    /// $1 job id, $2 attempt, $3 interpreter to run the script with ("" = run the file by its
    /// shebang), $4 the program that must exist on the host, $5 the script's length in bytes.
    /// The script arrives on standard input and is written to the job folder; it runs in an
    /// empty `work/` folder.
    static let prepareAndRunScript = jobFolder + #"""
    interpreter=$3 program=$4 size=$5
    phase upload
    cat > "$job_dir/script" && chmod 700 "$job_dir/script" || fail upload "cannot write the script to $job_dir"
    # A connection that breaks while the script is sent (a server killed or stopped) ends its
    # standard input early: a script cut short never runs, and a reattach finds the job never
    # started, so it is started again, whole.
    got=$(($(wc -c < "$job_dir/script")))
    [ "$got" -eq "$size" ] || fail upload "the script arrived cut short ($got of $size bytes): the connection broke while it was sent"
    command -v "$program" >/dev/null 2>&1 || fail command "the interpreter $program is not installed on the host"
    mkdir -p "$job_dir/work" && cd "$job_dir/work" || fail upload "cannot make $job_dir/work"
    if [ -n "$interpreter" ]; then run_detached "$interpreter" "$job_dir/script"; else run_detached "$job_dir/script"; fi
    """#

    /// $1 job id, $2 bytes of stdout and $3 of stderr the server has. Follows a job that was
    /// started before (by this server or one that stopped) from there, when it is still the
    /// job that was started: same folder, same boot of the host, its command started.
    static let reattach = follower + #"""
    set -u
    job_dir="$HOME/.deferred/jobs/$1"
    [ -d "$job_dir" ] || exit 90
    boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
    [ "$(cat "$job_dir/boot_id" 2>/dev/null)" = "$boot" ] || exit 90
    started() { case $(head -n 1 "$job_dir/phase" 2>/dev/null) in running|finished) return 0 ;; esac; return 1; }
    # A start whose connection dropped may still be preparing: wait until it starts the command
    # or ends (a reused pid is told apart by its command line, where /proc has one).
    p=$(cat "$job_dir/prepare_pid" 2>/dev/null)
    preparing() { [ -n "$p" ] && kill -0 "$p" 2>/dev/null && { [ ! -r "/proc/$p/cmdline" ] || grep -q deferred-job "/proc/$p/cmdline"; }; }
    while ! started && preparing; do sleep 0.1; done
    started || exit 91
    [ -f "$job_dir/stdout" ] && [ -f "$job_dir/stderr" ] || exit 90
    follow "$2" "$3"
    collect_and_exit $?
    """#

    /// $1 the set-up script's SHA-256, $2 its length in bytes. Runs the script from standard
    /// input once per host and version: a marker in `~/.deferred/bootstrap/` remembers that it
    /// succeeded. A script cut short by a broken connection is not run (nor marked as run).
    static let bootstrap = #"""
    marker="$HOME/.deferred/bootstrap/$1"
    [ -f "$marker" ] && { echo "deferred: bootstrap $1 ran before"; exit 0; }
    mkdir -p "$HOME/.deferred/bootstrap" || exit 1
    cat > "$marker.sh" || exit 1
    got=$(($(wc -c < "$marker.sh")))
    [ "$got" -eq "$2" ] || { echo "deferred: the set-up script arrived cut short ($got of $2 bytes)" >&2; exit 1; }
    sh "$marker.sh" </dev/null
    status=$?
    [ $status -eq 0 ] && touch "$marker"
    exit $status
    """#

    /// $1 job id, $2 grace seconds. SIGTERM to the job's process group, SIGKILL to what is
    /// left after the grace period. OpenSSH ignores SSH `signal` requests for root and a
    /// closed channel leaves the command running, so killing is a command of its own.
    static let kill = #"""
    dir="$HOME/.deferred/jobs/$1"; f="$dir/pgid"; grace=$2; i=0
    while [ ! -s "$f" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    [ -s "$f" ] || exit 0
    pg=$(cat "$f"); scope=$(cat "$dir/scope" 2>/dev/null)
    members() { [ -n "$scope" ] && cat "$scope/cgroup.procs" 2>/dev/null; }
    signal() { kill -"$1" "-$pg" 2>/dev/null; for p in $(members); do kill -"$1" "$p" 2>/dev/null; done; }
    alive() { kill -0 "-$pg" 2>/dev/null || [ -n "$(members)" ]; }
    alive || exit 0
    signal TERM
    i=0
    while alive && [ $i -lt $((grace*10)) ]; do sleep 0.1; i=$((i+1)); done
    signal KILL
    # cgroup.kill (Linux 5.14) takes every member at once, whatever forks meanwhile.
    [ -n "$scope" ] && [ -e "$scope/cgroup.kill" ] && echo 1 > "$scope/cgroup.kill" 2>/dev/null
    # Killed members leave the scope only once reaped (by init, for those that left the group):
    # wait for that, so collect finds the scope empty and can remove it.
    i=0
    while [ -n "$scope" ] && grep -q '^populated 1' "$scope/cgroup.events" 2>/dev/null && [ $i -lt 50 ]; do
      sleep 0.1; i=$((i+1))
    done
    exit 0
    """#

    /// `collect_files` prints the phase reached and the command's exit status ("-" when none
    /// was written) as the first line of stdout, "resources", the command's CPU times (the
    /// children's line of `times`) and its peak memory as the second, then streams the
    /// artifacts folder as one tar archive (links stay links, for the server to refuse). The
    /// job folder stays, marked `collected`, until the server has stored the job's end
    /// (`forget`): a server stopped in between collects it again rather than run it again.
    /// `collect_and_exit` sends `c <verdict>` first, then the same, and exits with the verdict.
    private static let collector = #"""
    collect_files() (
      cd "$job_dir" 2>/dev/null || { printf 'missing -\nresources - - -\n'; exit 0; }
      p=$(head -n 1 phase 2>/dev/null); e=$(head -n 1 exit 2>/dev/null); printf '%s %s\n' "${p:-missing}" "${e:--}"
      t=$(sed -n 2p times 2>/dev/null); m=$(head -n 1 memory_peak 2>/dev/null); printf 'resources %s %s\n' "${t:-- -}" "${m:--}"
      # tar's complaints reach the server after the archive, apart from the job's output.
      if [ -d artifacts ]; then tar -cf - -C artifacts . 2>tar.err || { s=$?; cat tar.err; echo "tar exited with status $s"; } >&2; fi
      # The job's scope goes once nothing runs in it (a folder with processes cannot be removed);
      # a member that just died may take a moment to be reaped. What a finished job left
      # running on purpose keeps its scope.
      if [ -s scope ]; then
        s=$(cat scope); i=0
        until [ ! -d "$s" ] || rmdir "$s" 2>/dev/null || [ $i -ge 20 ] || grep -q '^populated 1' "$s/cgroup.events" 2>/dev/null; do
          sleep 0.1; i=$((i+1))
        done
      fi
      : > collected
    )
    collect_and_exit() {
      printf 'c %s\n' "$1"
      collect_files
      exit "$1"
    }

    """#

    /// $1 job id. Collects a job on its own (`collect_files`): for a start or reattach whose
    /// collect stream was cut or could not be stored.
    static let collect = collector + #"""
    job_dir="$HOME/.deferred/jobs/$1"
    collect_files
    """#

    /// Job ids, each of a job whose end is stored: their folders go. So do folders collected
    /// over a week ago whose server never got to forget them.
    static let forget = #"""
    for id in "$@"; do [ -n "$id" ] && rm -rf "$HOME/.deferred/jobs/$id"; done
    for marker in "$HOME"/.deferred/jobs/*/collected; do
      [ -f "$marker" ] && [ -n "$(find "$marker" -mtime +7 2>/dev/null)" ] && rm -rf "${marker%/collected}"
    done
    exit 0
    """#
}
