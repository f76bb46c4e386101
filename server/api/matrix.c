/* matrix.c - the replies for a number array that does not parse, shared by
 * the JSON decoders. */
#include "api/api.h"

void qs_reply_matrix_error(qs_req *r, qs_jerr e, size_t width, size_t max_rows, size_t errpos) {
  {
    switch (e) {
      case QS_JWIDTH:
        if (width)
          qs_reply_error(r, 422, "wrong input width: every row needs %zu numbers (at byte %zu of the array)",
                         width, errpos);
        else
          qs_reply_error(r, 422, "rows of different widths (at byte %zu of the array)", errpos);
        break;
      case QS_JROWS:
        qs_reply_error(r, 413, "batch larger than %zu rows", max_rows);
        break;
      case QS_JEMPTY: qs_reply_error(r, 422, "no input rows"); break;
      case QS_JNONFINITE:
        qs_reply_error(r, 422, "non-finite or out-of-range number at byte %zu of the array", errpos);
        break;
      case QS_JTYPE:
        qs_reply_error(r, 400, "inputs must be numbers in an array of rows (wrong type at byte %zu of the array)",
                       errpos);
        break;
      default:
        qs_reply_error(r, 400, "malformed JSON in the input array at byte %zu", errpos);
        break;
    }
  }
}

