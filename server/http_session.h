// HttpSession: one HTTP/1.1 connection to a node's --http-listen port, as a
// pure class (bytes in, requests out, response bytes back), the way
// RespSession is for Redis clients. The runtime feeds it what the socket
// reads and writes what it returns; it does no I/O, so tests drive it with
// crafted bytes.
//
// Requests are parsed by Debian's http-parser (libhttp-parser-dev), never by
// hand. Promises:
//  - Keep-alive: HTTP/1.1 connections stay open unless the client says
//    "Connection: close"; HTTP/1.0 ones close unless it says keep-alive.
//    Pipelined requests are answered in order.
//  - Only GET and HEAD reach the handler; other methods get 405 (with
//    Allow: GET, HEAD), and the connection stays usable.
//  - Limits: a request line and headers over max_header_bytes get 431, a
//    body over max_body_bytes 413, anything the parser refuses 400; each of
//    these closes the connection after the answer (finished()).
//  - A client that sends requests faster than it reads the answers, so that
//    more than max_output_bytes are waiting to be written, is disconnected
//    without more answers (Redis's client output buffer limit does the same).
//  - With an authorize callback (a node with users), every request must
//    carry Basic credentials it accepts; others get 401 with
//    WWW-Authenticate. Without one (a node without users), all may read.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringkv {

struct HttpRequest {
  std::string method;  // GET or HEAD
  std::string path;    // without the query, e.g. /api/status
  std::string query;   // after '?', may be empty
  std::string user;    // from Basic credentials, when authorize accepted them
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

struct HttpOptions {
  size_t max_header_bytes = 8 * 1024;  // request line and headers
  size_t max_body_bytes = 4 * 1024;    // GET and HEAD need none
  size_t max_output_bytes = 8 << 20;   // answers waiting to be written
  // Given the user and password of a request's Basic credentials: true if
  // that user may read (the node's ACL: a user with the read role). Empty:
  // no users, every request is served.
  std::function<bool(std::string_view user, std::string_view password)> authorize;
};

// Counters shared by every HTTP connection of a node.
struct HttpStats {
  uint64_t requests = 0;       // answered by the handler
  uint64_t bad_requests = 0;   // 400, 405, 413, 431
  uint64_t unauthorized = 0;   // 401
  uint64_t overflows = 0;      // disconnected: answers not read
};

class HttpSession {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  HttpSession(HttpOptions options, Handler handler, HttpStats* stats);
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  // Bytes from the client; unsent_bytes: answers given earlier that the
  // runtime has not written yet (for the output limit).
  void Feed(std::string_view data, size_t unsent_bytes = 0);
  // Answer bytes to send, in request order.
  std::string TakeOutput();
  // Close the connection once the output is written; nothing more is read.
  bool finished() const { return finished_; }
  // Why it finished, for the log ("bad request: ...", "client closed", ...).
  const std::string& close_reason() const { return close_reason_; }

  // The bytes of a response (exposed for tests and for the runtime's own
  // errors).
  static std::string Serialize(const HttpResponse& response, bool head, bool keep_alive,
                               bool http10);
  static const char* Reason(int status);

 private:
  struct Parser;
  friend struct Parser;

  // Callbacks of the parser.
  int OnMessageBegin();
  int OnUrl(const char* at, size_t len);
  int OnHeaderField(const char* at, size_t len);
  int OnHeaderValue(const char* at, size_t len);
  int OnHeadersComplete();
  int OnBody(const char* at, size_t len);
  int OnMessageComplete();

  // Answers with an error and finishes.
  void Refuse(int status, const std::string& why);
  void Answer(const HttpResponse& response, bool head, bool keep_alive);
  bool CountHeaderBytes(size_t len);

  HttpOptions options_;
  Handler handler_;
  HttpStats* stats_;
  std::unique_ptr<Parser> parser_;
  std::string out_;
  size_t unsent_ = 0;  // caller's unsent bytes at the current Feed
  bool finished_ = false;
  std::string close_reason_;

  // The request being parsed.
  std::string url_;
  std::vector<std::pair<std::string, std::string>> headers_;
  bool last_was_value_ = false;
  size_t header_bytes_ = 0;
  size_t body_bytes_ = 0;
  bool refused_ = false;  // a callback refused the request: stop parsing
};

}  // namespace ringkv
