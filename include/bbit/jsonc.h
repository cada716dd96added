/* JSONC support without Lua: the comment/trailing-comma pre-pass, a strict
 * JSON checker that says what was expected, and offset -> line:column.
 *
 * How bbit decodes JSONC (runtime/lua/json.c):
 *   1. copy the text and call bbit_jsonc_blank() on the copy: comments and
 *      trailing commas become spaces, so every byte offset stays the same;
 *   2. bbit_json_check() on the copy: the first error with a message;
 *   3. cJSON_ParseWithOpts() on the copy, then build the Lua value;
 *   4. an error offset becomes line:column with bbit_jsonc_position() on the
 *      ORIGINAL text (the copy has multi-byte characters in comments blanked).
 *
 * Positions: lines and columns are 1-based. Only '\n' ends a line, so CRLF
 * files count like LF files and a lone '\r' is not a line break. Columns count
 * characters, not bytes: every byte that is not a UTF-8 continuation byte
 * (0x80..0xBF) starts a new column; a tab is one column.
 */
#ifndef BBIT_JSONC_H
#define BBIT_JSONC_H

#include <stddef.h>

/* The deepest nesting of arrays/objects bbit reads or writes (cJSON's own limit). */
#define BBIT_JSON_MAX_DEPTH 1000

struct bbit_json_error {
    size_t offset;      /* byte offset of the error in the text */
    char message[128];   /* what was expected, e.g. "expected ':' after an object key" */
};

/* Blanks line comments (// to the end of the line), block comments (slash-star
 * to star-slash) and trailing commas (a ',' after a value
 * whose next non-blank character is ']' or '}') to spaces, in place. Newlines
 * inside block comments are kept. Strings are untouched (a string also ends
 * at a raw newline, where the checker will report it as unterminated).
 * Returns 0, or -1 with err set ("unterminated comment" at the comment start). */
int bbit_jsonc_blank(char *text, size_t len, struct bbit_json_error *err);

/* Checks that text[0..len) is one strict JSON value (RFC 8259), optionally
 * preceded by a UTF-8 byte order mark, nested at most max_depth deep.
 * `strict` only changes messages: it names comments and trailing commas as
 * not allowed (use it when the pre-pass was not run). Returns 0, or -1 with
 * err set to the first error. */
int bbit_json_check(const char *text, size_t len, int max_depth, int strict,
                    struct bbit_json_error *err);

/* The 1-based line and column of byte `offset` in text[0..len) (offset may be len). */
void bbit_jsonc_position(const char *text, size_t len, size_t offset, unsigned *line,
                         unsigned *column);

#endif
