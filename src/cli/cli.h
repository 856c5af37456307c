/*
 * cli: the imagesd command line. main.c dispatches to one function per command; each takes
 * its own argv (argv[0] = the command name) and returns the process exit status:
 * 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef ISD_CLI_H
#define ISD_CLI_H

/* imagesd keys create|list|revoke */
int isd_cli_keys(int argc, char **argv);
/* imagesd usage [--since DATE] [--by key|model|day] [--json] */
int isd_cli_usage(int argc, char **argv);

/* imagesd engine txt2img: runs the diffusion engine once, without the server */
int isd_cli_engine(int argc, char **argv);

#endif
