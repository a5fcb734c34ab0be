/// Every figure `/metrics` serves, by the name Prometheus shows (README's "Metrics" says what
/// each counts). Counted where it happens, in whichever module; named once, here.
public enum MetricName {
    public static let webhooksReceived = "deferred_webhooks_received_total"
    public static let scriptsReceived = "deferred_scripts_received_total"
    public static let jobsFinished = "deferred_jobs_finished_total"
    public static let jobWait = "deferred_job_wait_seconds"
    public static let jobRun = "deferred_job_run_seconds"
    public static let artifactBytes = "deferred_artifact_bytes_total"
    public static let queueDepth = "deferred_queue_depth"
    public static let queueOldestAge = "deferred_queue_oldest_age_seconds"
    public static let hosts = "deferred_hosts"
    public static let hostAwake = "deferred_host_awake_seconds_total"
    public static let hostBusy = "deferred_host_busy_seconds_total"
    public static let hostWakes = "deferred_host_wakes_total"
    public static let hostWake = "deferred_host_wake_seconds"
    public static let sshReconnects = "deferred_ssh_reconnects_total"
    public static let cloudCalls = "deferred_cloud_api_calls_total"
}
