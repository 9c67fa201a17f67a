/* SPDX-License-Identifier: Apache-2.0 */
#ifndef BERTH_VERSION_H
#define BERTH_VERSION_H

#define BERTH_VERSION "0.1.0"

#endif
