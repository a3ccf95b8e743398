/* SPDX-License-Identifier: Apache-2.0
 *
 * worker.h - the long-running job: Kafka in, Marketo lists out, offsets
 * committed only after Marketo accepted what they carried.
 */
#ifndef MLS_WORKER_H
#define MLS_WORKER_H

#include "mlsync/config.h"

/**
 * Run the worker until SIGTERM/SIGINT (installs its own handlers).
 * @returns a process exit code from the table in the README (0 on a clean
 *          drain).
 */
int mls_worker_main(const struct mls_cfg *cfg);

#endif
