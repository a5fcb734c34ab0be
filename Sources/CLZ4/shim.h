#ifndef DEFERRED_CLZ4_SHIM_H
#define DEFERRED_CLZ4_SHIM_H
#include <lz4.h>
#endif
