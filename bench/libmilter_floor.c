/* For bench/milter_floor.sh: a milter built on Sendmail's libmilter (the library C milters such
 * as milter-greylist and OpenDKIM are built on) that decides nothing. It asks for the same steps
 * and no-reply flags as greylisting-milter, answers 451 4.7.1 at every RCPT and CONTINUE
 * otherwise: what libmilter alone costs per SMTP session. Not part of the product.
 * Build: cc -O2 -o libmilter_floor bench/libmilter_floor.c -lmilter -lpthread
 * Run:   ./libmilter_floor inet:PORT@127.0.0.1 */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sfsistat negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                          unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                          unsigned long *pf2, unsigned long *pf3) {
    (void)ctx; (void)f2; (void)f3;
    unsigned long want = SMFIP_NOHDRS | SMFIP_NOBODY | SMFIP_NOEOH | SMFIP_NOUNKNOWN |
                         SMFIP_NR_HDR | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL |
                         SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH | SMFIP_NR_BODY;
    *pf0 = f0 & SMFIF_ADDHDRS;
    *pf1 = f1 & want;
    *pf2 = 0; *pf3 = 0;
    return SMFIS_CONTINUE;
}
static sfsistat connect_cb(SMFICTX *c, char *h, _SOCK_ADDR *a) { (void)c; (void)h; (void)a; return SMFIS_CONTINUE; }
static sfsistat helo_cb(SMFICTX *c, char *h) { (void)c; (void)h; return SMFIS_CONTINUE; }
static sfsistat mail_cb(SMFICTX *c, char **a) { (void)c; (void)a; return SMFIS_CONTINUE; }
static sfsistat rcpt_cb(SMFICTX *c, char **a) {
    (void)a;
    smfi_setreply(c, "451", "4.7.1", "Service unavailable - try again later");
    return SMFIS_TEMPFAIL;
}
static sfsistat eom_cb(SMFICTX *c) { (void)c; return SMFIS_CONTINUE; }

int main(int argc, char **argv) {
    struct smfiDesc desc;
    memset(&desc, 0, sizeof desc);
    desc.xxfi_name = "floor";
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = SMFIF_ADDHDRS;
    desc.xxfi_connect = connect_cb;
    desc.xxfi_helo = helo_cb;
    desc.xxfi_envfrom = mail_cb;
    desc.xxfi_envrcpt = rcpt_cb;
    desc.xxfi_eom = eom_cb;
    desc.xxfi_negotiate = negotiate;
    if (argc < 2) { fprintf(stderr, "usage: %s inet:PORT@127.0.0.1\n", argv[0]); return 2; }
    if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(desc) == MI_FAILURE) return 1;
    smfi_setbacklog(1024);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
