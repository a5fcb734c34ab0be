#ifndef DEFERRED_CLIBSSH_SHIM_H
#define DEFERRED_CLIBSSH_SHIM_H
#include <libssh/libssh.h>
#include <libssh/callbacks.h>
#include <libssh/sftp.h>
#include <stdbool.h>

/* libssh's ssh_options_set takes a void pointer whose type depends on the option;
   these typed wrappers keep the Swift side free of unsafe casts. */
static inline int deferred_ssh_set_string(ssh_session s, enum ssh_options_e o, const char *v) {
    return ssh_options_set(s, o, v);
}
static inline int deferred_ssh_set_uint(ssh_session s, enum ssh_options_e o, unsigned int v) {
    return ssh_options_set(s, o, &v);
}
static inline int deferred_ssh_set_long(ssh_session s, enum ssh_options_e o, long v) {
    return ssh_options_set(s, o, &v);
}
static inline int deferred_ssh_set_int(ssh_session s, enum ssh_options_e o, int v) {
    return ssh_options_set(s, o, &v);
}
static inline int deferred_ssh_set_bool(ssh_session s, enum ssh_options_e o, int v) {
    bool b = v != 0;
    return ssh_options_set(s, o, &b);
}
#endif
