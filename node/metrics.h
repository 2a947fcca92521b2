// Prometheus metrics of a node: the text exposition format, version 0.0.4
// (what `GET /metrics` answers, server/http_api.h).
//
// Pure code: it reads a Node's counters and what the runtime knows
// (connections per listener, the store's sizes) and returns text, so it is
// unit-tested without sockets. Every family has one # HELP and one # TYPE
// line followed by all of its samples; label values are escaped (\\, \",
// \n); only finite numbers are written (a peer whose phi is infinite, one
// never heard from or left, has no phi sample). The families and their
// names are listed in docs/design-notes.md ("Metrics").
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/histogram.h"
#include "store/store.h"

namespace ringkv {

class Node;

// Connections of one listener of the runtime ("native": ringkv clients and
// peers; "resp": Redis clients; "http": metrics and dashboard).
struct ListenerConnections {
  std::string listener;
  uint64_t accepted = 0;
  uint64_t open = 0;
};

// What the runtime knows and the Node does not.
struct MetricsInputs {
  std::vector<ListenerConnections> connections;
  Store::Sizes store;
};

// Writes the text format: families, samples, escaping, number formatting.
class PrometheusText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  // Starts a family: type is counter, gauge or histogram. Its samples must
  // follow before the next family starts.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  // One sample; name is the family's name (plus _bucket/_sum/_count for
  // histograms).
  void Sample(std::string_view name, const Labels& labels, double value);
  void Sample(std::string_view name, const Labels& labels, uint64_t value);
  // A histogram's _bucket (cumulative, one per bound and +Inf), _sum and
  // _count samples. bounds are in the histogram's unit; dividing by divisor
  // gives the exposed one (1e6: microseconds to seconds).
  void HistogramSamples(std::string_view name, const Labels& labels, const Histogram& h,
                        const std::vector<uint64_t>& bounds, double divisor);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

  // A label value with \, " and newline escaped.
  static std::string EscapeLabel(std::string_view value);
  // A sample value: integers as such, +Inf/-Inf/NaN as Prometheus spells them.
  static std::string FormatValue(double value);

 private:
  void Line(std::string_view name, const Labels& labels, const std::string& value);
  std::string out_;
};

// The node's metrics in the text format.
std::string PrometheusMetrics(const Node& node, const MetricsInputs& inputs);

// The Content-Type of the text format.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace ringkv
