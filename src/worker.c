/* SPDX-License-Identifier: Apache-2.0
 *
 * worker.c - placeholder until the worker lands; always fails.
 */
#include "mlsync/worker.h"

#include "mlsync/log.h"

int mls_worker_main(const struct mls_cfg *cfg)
{
        (void)cfg;
        mls_log(MLS_LOG_ERROR, "worker", "worker not built yet");
        return 70;
}
