#ifndef STOCKPILE_CLIBPQ_SHIM_H
#define STOCKPILE_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
