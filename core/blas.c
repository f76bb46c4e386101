/* blas.c - the fp32 baseline's OpenBLAS is forced to one thread: the
 * comparison with the int8 path is per core, and a server already runs one
 * request per thread. */
#include <cblas.h>

#include "qat.h"

void qat_blas_single_thread(void) { openblas_set_num_threads(1); }

/* Which kernels OpenBLAS picked (OPENBLAS_CORETYPE overrides its CPUID
 * choice), so a baseline figure says what it was measured with. */
const char *qat_blas_corename(void) {
  const char *n = openblas_get_corename();
  return n ? n : "?";
}
