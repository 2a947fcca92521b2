// REPORT prints a figure a test measured (counts, rounds, ratios) to stdout,
// whether the test passes or fails, so `scripts/test` shows it.
#pragma once

#include <cstdio>
#include <sstream>

#define REPORT(expr)                                      \
  do {                                                    \
    std::ostringstream report_stream_;                    \
    report_stream_ << expr;                               \
    std::printf("[figure] %s\n", report_stream_.str().c_str()); \
    std::fflush(stdout);                                  \
  } while (0)
