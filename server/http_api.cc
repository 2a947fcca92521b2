#include "server/http_api.h"

#include <string_view>

#include "node/node.h"

namespace ringkv {

namespace {

const char* ContentTypeOf(std::string_view name) {
  auto ends = [&](std::string_view ext) { return name.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

HttpResponse Json(std::string body) {
  HttpResponse r;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

}  // namespace

HttpApi::HttpApi(Node* node, std::function<MetricsInputs()> inputs)
    : node_(node), inputs_(std::move(inputs)) {}

HttpResponse HttpApi::Handle(const HttpRequest& req) const {
  const std::string& path = req.path;
  if (path == "/metrics") {
    HttpResponse r;
    r.content_type = kPrometheusContentType;
    r.body = PrometheusMetrics(*node_, inputs_ ? inputs_() : MetricsInputs{});
    return r;
  }
  if (path == "/api/status") return Json(node_->StatusJson());
  if (path == "/api/ring") return Json(node_->RingJson());
  if (path == "/api/stats") return Json(node_->StatsJson());
  if (path == "/api/hints") return Json(node_->HintsJson());
  if (path == "/api/aae") return Json(node_->anti_entropy().Json());
  std::string_view name = path == "/" ? std::string_view("index.html") : std::string_view(path).substr(1);
  for (unsigned long i = 0; i < kDashboardFileCount; ++i) {
    if (name == kDashboardFiles[i].name) {
      HttpResponse r;
      r.content_type = ContentTypeOf(name);
      r.body.assign(reinterpret_cast<const char*>(kDashboardFiles[i].data), kDashboardFiles[i].size);
      return r;
    }
  }
  HttpResponse r;
  r.status = 404;
  r.body = "not found; this node serves /, /metrics, /api/status, /api/ring, /api/stats, "
           "/api/hints and /api/aae\n";
  return r;
}

}  // namespace ringkv
