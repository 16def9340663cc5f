/*
 * Calls format_tv() and quote_822_local_flags() from the installed Postfix
 * libraries, for the cross-check in crosscheck_test.go. Each input line is
 * "T<sec> <usec> <resolution>" or "Q<address>"; each output line is the
 * library's result.
 */
#include <stdio.h>
#include <string.h>

/* The first members of Postfix's VBUF, enough to read the string pointer. */
struct vbuf_head {
    int flags;
    unsigned char *data;
};
typedef struct VSTRING VSTRING;
extern VSTRING *vstring_alloc(long);
extern void vstring_free(VSTRING *);
extern VSTRING *format_tv(VSTRING *, long, long, int, int);
extern VSTRING *quote_822_local_flags(VSTRING *, const char *, int);

#define STR(vp) ((char *) ((struct vbuf_head *) (vp))->data)
#define QUOTE_FLAG_8BITCLEAN 1

int main(void)
{
    static char line[65536];

    while (fgets(line, sizeof(line), stdin)) {
        VSTRING *buf = vstring_alloc(100);
        line[strcspn(line, "\n")] = 0;
        if (line[0] == 'T') {
            long sec, usec;
            int res;
            sscanf(line + 1, "%ld %ld %d", &sec, &usec, &res);
            format_tv(buf, sec, usec, 2, res);
        } else {
            quote_822_local_flags(buf, line + 1, QUOTE_FLAG_8BITCLEAN);
        }
        printf("%s\n", STR(buf));
        vstring_free(buf);
    }
    return 0;
}
