/* JSON/JSONC helpers without Lua, shared by the decoder and encoder in
 * runtime/lua/json.c: the nesting limit and offset -> line:column.
 *
 * The decoder (core.json.decode) reads the text in one pass and reports its
 * first error at a byte offset; bbit_jsonc_position() turns that offset into
 * the "NAME:line:column: message" the user sees.
 *
 * Positions: lines and columns are 1-based. Only '\n' ends a line, so CRLF
 * files count like LF files and a lone '\r' is not a line break. Columns count
 * characters, not bytes: every byte that is not a UTF-8 continuation byte
 * (0x80..0xBF) starts a new column; a tab is one column. A UTF-8 byte order
 * mark at the start takes no column.
 */
#ifndef BBIT_JSONC_H
#define BBIT_JSONC_H

#include <stddef.h>

/* The deepest nesting of arrays/objects bbit reads or writes. */
#define BBIT_JSON_MAX_DEPTH 1000

/* The 1-based line and column of byte `offset` in text[0..len) (offset may be len). */
void bbit_jsonc_position(const char *text, size_t len, size_t offset, unsigned *line,
                         unsigned *column);

#endif
