/* SPDX-License-Identifier: Apache-2.0
 *
 * budget_view.h - `mlsync budget`: the read-only view of the shared budget.
 */
#ifndef MLS_BUDGET_VIEW_H
#define MLS_BUDGET_VIEW_H

#include "mlsync/config.h"

/** Read the control topics and print the view. @returns an exit code. */
int mls_budget_view(const struct mls_cfg *cfg);

#endif
