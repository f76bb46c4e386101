/* envelope.c - the KServe v2 request's envelope through jansson: the body
 * with its number array cut out, parsed strict (duplicate keys refused),
 * and its "baseline"/"mode" parameters. The native /predict decoder does not
 * use it (predict_json.c walks its body without building a tree). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/jansson_alloc.h"

bool qs_read_options(qs_req *r, json_t *obj, bool *baseline, bool *dynamic) {
  json_t *b = obj ? json_object_get(obj, "baseline") : NULL;
  if (b) {
    if (!json_is_boolean(b)) {
      qs_reply_error(r, 400, "\"baseline\" must be true or false");
      return false;
    }
    *baseline = json_is_true(b);
  }
  json_t *mode = obj ? json_object_get(obj, "mode") : NULL;
  if (mode) {
    const char *v = json_string_value(mode);
    if (v && strcmp(v, "static") == 0)
      *dynamic = false;
    else if (v && strcmp(v, "dynamic") == 0)
      *dynamic = true;
    else {
      qs_reply_error(r, 400, "\"mode\" must be \"static\" or \"dynamic\"");
      return false;
    }
  }
  return true;
}

json_t *qs_parse_envelope(qs_req *r, const char *text, size_t len, qs_span sp, bool found) {
  char *env = (char *)text;
  size_t envlen = len;
  /* JSON text never holds a raw NUL byte, but jansson 2.14 reads one as the
   * end of input in some places and skips it in others (so a body with a
   * NUL after the spliced-out array was accepted). Refuse it outright. */
  const char *nul = memchr(text, '\0', len);
  if (nul) {
    qs_reply_error(r, 400, "malformed JSON: NUL byte at byte %zu", (size_t)(nul - text));
    return NULL;
  }
  /* "[]", not "0": bytes after the array must stay a separate token, or
   * "inputs":[[1]]e38 became "inputs":0e38, valid JSON (fuzz_predict). */
  if (found && !qs_json_splice(text, len, sp, "[]", &env, &envlen)) {
    qs_reply_error(r, 503, "out of memory");
    return NULL;
  }
  json_error_t jerr;
  qs_json_alloc_failed();
  /* The parse may build at most twice the text plus 256 KiB: a real
   * envelope (id, parameters, outputs) is a few hundred bytes of tree;
   * millions of tiny values are refused instead of built (413). */
  size_t limit = 2 * envlen + QS_JSON_TREE_SLACK;
  qs_json_limit_begin(limit);
  json_t *root = json_loadb(env, envlen, JSON_REJECT_DUPLICATES, &jerr);
  bool over = qs_json_limit_end();
  if (env != text) free(env);
  if (!root) {
    if (over)
      qs_reply_error(r, 413, "the JSON needs more than %zu bytes of memory to parse (2 x its "
                     "size + 256 KiB): send fewer, larger values", limit);
    else if (qs_json_alloc_failed())
      qs_reply_error(r, 503, "out of memory");
    else
      qs_reply_error(r, 400, "malformed JSON: %s", jerr.text);
    return NULL;
  }
  if (!json_is_object(root)) {
    json_decref(root);
    qs_reply_error(r, 400, "the body must be a JSON object");
    return NULL;
  }
  return root;
}

