// HttpApi: what a node answers on its --http-listen port, path by path.
// Pure code over the Node (no sockets): server/http_session.h parses the
// requests and calls Handle for each GET or HEAD.
//
//   /metrics        Prometheus text format (node/metrics.h)
//   /api/status     the JSON of `ringkv status --json`
//   /api/ring       the JSON of `ringkv ring --json`
//   /api/stats      the JSON of `ringkv stats --json`
//   /api/hints      the JSON of `ringkv hints --json`
//   /api/aae        the JSON of `ringkv admin aae status --json`
//   /               the dashboard (server/dashboard/, compiled into the binary)
//   anything else   404
#pragma once

#include <functional>
#include <string>

#include "node/metrics.h"
#include "server/http_session.h"

namespace ringkv {

class Node;

class HttpApi {
 public:
  // inputs: what the runtime adds to the metrics (connections, store sizes).
  HttpApi(Node* node, std::function<MetricsInputs()> inputs);

  HttpResponse Handle(const HttpRequest& request) const;

 private:
  Node* node_;
  std::function<MetricsInputs()> inputs_;
};

// A file of the dashboard compiled into the binary (the build generates
// the definitions from server/dashboard/).
struct EmbeddedFile {
  const char* name;  // e.g. "index.html"
  const unsigned char* data;
  unsigned long size;
};
extern const EmbeddedFile kDashboardFiles[];
extern const unsigned long kDashboardFileCount;

}  // namespace ringkv
