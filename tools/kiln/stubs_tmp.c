#include "cli.h"
int kiln_cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; return 2; }
int kiln_cmd_run(int argc, char **argv) { (void)argc; (void)argv; return 2; }
