/*
 * Included before each QuickJS C file (see quickjs-cc) to keep QuickJS's
 * stack-overflow check on WASI.
 *
 * quickjs-ng, as bundled by rquickjs-sys 0.14.0, sets its stack limit to
 * "none" whenever `__wasi__` is defined, so deep JavaScript recursion
 * exhausts the WebAssembly stack and traps the instance instead of throwing
 * a catchable RangeError. This header includes every libc header QuickJS
 * uses while `__wasi__` is still defined (WASI libc's <wasi/api.h> requires
 * it), then undefines it. The include guards make QuickJS's own includes of
 * these headers no-ops. QuickJS's other `__wasi__` branches fall back to code
 * that EMSCRIPTEN (defined by rquickjs-sys for WASI) already selects. The one
 * difference is that `malloc_usable_size` reports 0, which only affects
 * QuickJS's memory statistics.
 */
#ifndef MOAT_QUICKJS_STACK_CHECK_H
#define MOAT_QUICKJS_STACK_CHECK_H

#include <wasi/api.h>

#include <alloca.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#undef __wasi__

#endif
