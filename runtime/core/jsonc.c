/* Byte offset -> line:column for JSON/JSONC error messages. No Lua here:
 * tests/c/test_jsonc.c tests it directly. See include/bbit/jsonc.h. */
#include <string.h>

#include "bbit/jsonc.h"

void bbit_jsonc_position(const char *text, size_t len, size_t offset, unsigned *line,
                         unsigned *column)
{
    unsigned l = 1, col = 1;
    size_t i = 0;
    if (offset > len)
        offset = len;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 && offset >= 3)
        i = 3; /* the byte order mark is invisible in editors */
    for (; i < offset; i++) {
        unsigned char b = (unsigned char)text[i];
        if (b == '\n') {
            l++;
            col = 1;
        } else if ((b & 0xC0) != 0x80) {
            col++;
        }
    }
    *line = l;
    *column = col;
}
