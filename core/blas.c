/* blas.c - OpenBLAS settings. The fp32 baseline is single-threaded by
 * design: each server thread runs its own requests, and a fair comparison
 * with the one-thread int8 kernels needs one-thread BLAS. */
#include <cblas.h>

#include "qat.h"

void qat_blas_single_thread(void) { openblas_set_num_threads(1); }
