/// The shell scripts deferred runs on a build host. They are constants: every value they
/// need arrives as a positional parameter (see `ShellQuote.command`), so nothing from a
/// payload is ever part of a script's text.
///
/// Layout on the host: `~/.deferred/jobs/<job id>/` holds `artifacts/`, `checkout/` (a push)
/// or `script` and `work/` (a script), `pgid` (the job's process group), `scope` (its cgroup, where
/// the host lets deferred make one) and `phase`; `~/.deferred/cache/<project>.git` is a bare
/// repository that keeps fetched commits between jobs.
enum RemoteScripts {
    /// $1 job id. Makes a fresh job folder and the helpers both kinds of job use; `run_in_group`
    /// runs its arguments (as argv, never re-parsed) in a process group of their own, with the
    /// group's id in `pgid` for the kill script, and exits with their status.
    private static let jobFolder = #"""
    set -u
    job_id=$1
    root="$HOME/.deferred"
    job_dir="$root/jobs/$job_id"
    rm -rf "$job_dir" && mkdir -p "$job_dir/artifacts" "$root/cache" || { echo "deferred: cannot make $job_dir" >&2; exit 97; }
    phase() { printf '%s\n' "$1" > "$job_dir/phase"; }
    fail() { phase "$1"; printf 'deferred: %s\n' "$2" >&2; exit 97; }
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
    run_in_group() {
      export DEFERRED_JOB_ID="$job_id" DEFERRED_ARTIFACTS="$job_dir/artifacts"
      phase running
      scope=$(make_scope)
      # setsid: the job leads a process group of its own, which the kill script ends whole;
      # in its scope (when there is one), so are the processes that leave the group.
      setsid sh -c 'echo $$ > "$0/pgid"; [ -z "$1" ] || echo $$ > "$1/cgroup.procs" 2>/dev/null; shift; exec "$@"' \
        "$job_dir" "$scope" "$@" </dev/null &
      wait $!
      status=$?
      phase finished
      exit $status
    }

    """#

    /// $1 job id, $2 project, $3 clone URL, $4 commit, $5 ref, $6 command ("" = .deferred_server).
    /// Prepares the job folder, checks out the exact commit, and runs the command, exiting
    /// with its status. All in one exec: each exec costs the remote user's shell start-up.
    static let prepareAndRunPush = jobFolder + #"""
    project=$2 clone_url=$3 commit=$4 ref=$5 command=$6
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
    run_in_group sh -c "$command"
    """#

    /// $1 job id, $2 interpreter to run the script with ("" = run the file by its shebang),
    /// $3 the program that must exist on the host. The script arrives on standard input and
    /// is written to the job folder; it runs in an empty `work/` folder.
    static let prepareAndRunScript = jobFolder + #"""
    interpreter=$2 program=$3
    phase upload
    cat > "$job_dir/script" && chmod 700 "$job_dir/script" || fail upload "cannot write the script to $job_dir"
    command -v "$program" >/dev/null 2>&1 || fail command "the interpreter $program is not installed on the host"
    mkdir -p "$job_dir/work" && cd "$job_dir/work" || fail upload "cannot make $job_dir/work"
    if [ -n "$interpreter" ]; then run_in_group "$interpreter" "$job_dir/script"; else run_in_group "$job_dir/script"; fi
    """#

    /// $1 the set-up script's SHA-256. Runs the script from standard input once per host and
    /// version: a marker in `~/.deferred/bootstrap/` remembers that it succeeded.
    static let bootstrap = #"""
    marker="$HOME/.deferred/bootstrap/$1"
    [ -f "$marker" ] && { echo "deferred: bootstrap $1 ran before"; exit 0; }
    mkdir -p "$HOME/.deferred/bootstrap" || exit 1
    cat > "$marker.sh" || exit 1
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

    /// $1 job id. Prints the phase reached as the first line of stdout, then streams the
    /// artifacts folder as one tar archive (links stay links, for the server to refuse), then
    /// removes the job folder.
    static let collect = #"""
    job_dir="$HOME/.deferred/jobs/$1"
    cd "$job_dir" 2>/dev/null || { echo missing; exit 0; }
    p=$(head -n 1 phase 2>/dev/null); printf '%s\n' "${p:-missing}"
    if [ -d artifacts ]; then tar -cf - -C artifacts . || echo "tar exited with status $?" >&2; fi
    # The job's scope goes once nothing runs in it (a folder with processes cannot be removed);
    # a member that just died may take a moment to be reaped. What a finished job left
    # running on purpose keeps its scope.
    if [ -s scope ]; then
      s=$(cat scope); i=0
      until [ ! -d "$s" ] || rmdir "$s" 2>/dev/null || [ $i -ge 20 ] || grep -q '^populated 1' "$s/cgroup.events" 2>/dev/null; do
        sleep 0.1; i=$((i+1))
      done
    fi
    cd / && rm -rf "$job_dir"
    """#
}
