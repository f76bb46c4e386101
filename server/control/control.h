/* control.h - the libuv control loop: signals, the models-directory watch,
 * reloads and the graceful shutdown. It runs on its own thread; the HTTP
 * threads never see a signal (main blocks them before starting anything). */
#ifndef QS_CONTROL_H
#define QS_CONTROL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct MHD_Daemon;

/* Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (call first in
 * main, so every thread started later inherits the mask). */
void qs_control_block_signals(void);

/* Runs the loop until a SIGINT/SIGTERM drain ends. Returns 0 after a clean
 * drain, 1 when the drain timed out with requests still in flight. */
int qs_control_run(struct MHD_Daemon *d);

/* After qs_control_run: true when a model load was still running at the
 * drain deadline (the registry must then be left alone; the process exits). */
bool qs_control_loader_busy(void);

/* After qs_control_run: when the drain had to end (CLOCK_MONOTONIC ns, as
 * qs_now_ns), 0 when the loop ended without a drain. main bounds its
 * orderly stop by it. */
uint64_t qs_control_deadline_ns(void);

#endif
