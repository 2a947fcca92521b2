#include "server/http_session.h"

#include <http_parser.h>
#include <strings.h>

#include <climits>

#include <fmt/format.h>

#include "core/codec.h"

namespace ringkv {

// The parser and its callbacks; `data` points back at the session.
struct HttpSession::Parser {
  http_parser parser;
  http_parser_settings settings;

  static HttpSession* Of(http_parser* p) { return static_cast<HttpSession*>(p->data); }

  explicit Parser(HttpSession* session) {
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = session;
    http_parser_settings_init(&settings);
    settings.on_message_begin = [](http_parser* p) { return Of(p)->OnMessageBegin(); };
    settings.on_url = [](http_parser* p, const char* at, size_t len) { return Of(p)->OnUrl(at, len); };
    settings.on_header_field = [](http_parser* p, const char* at, size_t len) {
      return Of(p)->OnHeaderField(at, len);
    };
    settings.on_header_value = [](http_parser* p, const char* at, size_t len) {
      return Of(p)->OnHeaderValue(at, len);
    };
    settings.on_headers_complete = [](http_parser* p) { return Of(p)->OnHeadersComplete(); };
    settings.on_body = [](http_parser* p, const char* at, size_t len) { return Of(p)->OnBody(at, len); };
    settings.on_message_complete = [](http_parser* p) { return Of(p)->OnMessageComplete(); };
  }
};

HttpSession::HttpSession(HttpOptions options, Handler handler, HttpStats* stats)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      stats_(stats),
      parser_(std::make_unique<Parser>(this)) {}

HttpSession::~HttpSession() = default;

const char* HttpSession::Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string HttpSession::Serialize(const HttpResponse& r, bool head, bool keep_alive, bool http10) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
                                r.status, Reason(r.status), r.content_type, r.body.size());
  out += "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
  for (const auto& [k, v] : r.headers) out += fmt::format("{}: {}\r\n", k, v);
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (http10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head) out += r.body;
  return out;
}

void HttpSession::Feed(std::string_view data, size_t unsent_bytes) {
  if (finished_ || data.empty()) return;
  unsent_ = unsent_bytes;
  http_parser* p = &parser_->parser;
  size_t parsed = http_parser_execute(p, &parser_->settings, data.data(), data.size());
  if (finished_) return;  // a callback answered and closed (limits, close, overflow)
  enum http_errno err = HTTP_PARSER_ERRNO(p);
  if (err != HPE_OK) {
    Refuse(400, fmt::format("bad request: {}", http_errno_description(err)));
    return;
  }
  if (p->upgrade) {
    // An upgrade (WebSocket, h2c) we do not speak: the request was answered
    // as a plain one; what follows is not HTTP/1.1, so close.
    finished_ = true;
    close_reason_ = "client asked for a protocol upgrade";
    return;
  }
  if (parsed != data.size()) Refuse(400, "bad request: unparsed bytes");
}

std::string HttpSession::TakeOutput() { return std::move(out_); }

void HttpSession::Refuse(int status, const std::string& why) {
  if (finished_) return;
  if (status == 401) {
    ++stats_->unauthorized;
  } else {
    ++stats_->bad_requests;
  }
  HttpResponse r;
  r.status = status;
  r.body = why + "\n";
  out_ += Serialize(r, false, false, false);
  finished_ = true;
  close_reason_ = why;
  refused_ = true;
}

void HttpSession::Answer(const HttpResponse& response, bool head, bool keep_alive) {
  if (unsent_ + out_.size() > options_.max_output_bytes) {
    // The client does not read what it asked for: stop answering it.
    ++stats_->overflows;
    finished_ = true;
    close_reason_ = fmt::format("more than {} bytes of answers unread; disconnected",
                                options_.max_output_bytes);
    refused_ = true;
    return;
  }
  out_ += Serialize(response, head, keep_alive, parser_->parser.http_minor == 0 &&
                                                    parser_->parser.http_major == 1);
  if (!keep_alive) {
    finished_ = true;
    close_reason_ = "client closed";
  }
}

bool HttpSession::CountHeaderBytes(size_t len) {
  header_bytes_ += len;
  if (header_bytes_ <= options_.max_header_bytes) return true;
  Refuse(431, fmt::format("request line and headers over {} bytes", options_.max_header_bytes));
  return false;
}

int HttpSession::OnMessageBegin() {
  url_.clear();
  headers_.clear();
  last_was_value_ = false;
  header_bytes_ = 0;
  body_bytes_ = 0;
  return finished_ ? 1 : 0;
}

int HttpSession::OnUrl(const char* at, size_t len) {
  if (!CountHeaderBytes(len)) return 1;
  url_.append(at, len);
  return 0;
}

int HttpSession::OnHeaderField(const char* at, size_t len) {
  if (!CountHeaderBytes(len)) return 1;
  if (last_was_value_ || headers_.empty()) headers_.emplace_back();
  headers_.back().first.append(at, len);
  last_was_value_ = false;
  return 0;
}

int HttpSession::OnHeaderValue(const char* at, size_t len) {
  if (!CountHeaderBytes(len)) return 1;
  if (headers_.empty()) headers_.emplace_back();
  headers_.back().second.append(at, len);
  last_was_value_ = true;
  return 0;
}

int HttpSession::OnHeadersComplete() {
  uint64_t length = parser_->parser.content_length;
  if (length != ULLONG_MAX && length > options_.max_body_bytes) {
    Refuse(413, fmt::format("request body of {} bytes; the limit is {}", length, options_.max_body_bytes));
    return -1;  // an error (1 would mean "no body")
  }
  return 0;
}

int HttpSession::OnBody(const char*, size_t len) {
  body_bytes_ += len;
  if (body_bytes_ > options_.max_body_bytes) {
    Refuse(413, fmt::format("request body over {} bytes", options_.max_body_bytes));
    return 1;
  }
  return 0;  // GET and HEAD have no use for a body: it is skipped
}

int HttpSession::OnMessageComplete() {
  if (finished_) return 1;
  http_parser* p = &parser_->parser;
  bool keep_alive = http_should_keep_alive(p) != 0 && !p->upgrade;
  auto method = static_cast<enum http_method>(p->method);
  bool head = method == HTTP_HEAD;
  if (method != HTTP_GET && method != HTTP_HEAD) {
    ++stats_->bad_requests;
    HttpResponse r;
    r.status = 405;
    r.body = fmt::format("{} is not served here: this port only answers GET and HEAD\n",
                         http_method_str(method));
    r.headers.emplace_back("Allow", "GET, HEAD");
    Answer(r, false, keep_alive);
    return finished_ ? 1 : 0;
  }

  HttpRequest req;
  req.method = head ? "HEAD" : "GET";
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(url_.data(), url_.size(), 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) {
    Refuse(400, fmt::format("bad request: cannot parse the request target '{}'",
                            url_.substr(0, 200)));
    return 1;
  }
  req.path = url_.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
  if (u.field_set & (1 << UF_QUERY)) {
    req.query = url_.substr(u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
  }

  if (options_.authorize) {
    std::string user, password;
    bool have = false;
    for (const auto& [name, value] : headers_) {
      if (strcasecmp(name.c_str(), "Authorization") != 0) continue;
      if (value.size() > 6 && strncasecmp(value.c_str(), "Basic ", 6) == 0) {
        auto decoded = Base64Decode(std::string_view(value).substr(6));
        if (decoded.ok()) {
          auto colon = decoded->find(':');
          if (colon != std::string::npos) {
            user = decoded->substr(0, colon);
            password = decoded->substr(colon + 1);
            have = true;
          }
        }
      }
    }
    if (!have || !options_.authorize(user, password)) {
      ++stats_->unauthorized;
      HttpResponse r;
      r.status = 401;
      r.body = have ? "wrong user or password, or the user may not read\n"
                    : "this node has users: log in as one with the read role\n";
      r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"ringkv\", charset=\"UTF-8\"");
      Answer(r, head, keep_alive);
      return finished_ ? 1 : 0;
    }
    req.user = user;
  }

  ++stats_->requests;
  HttpResponse r = handler_(req);
  Answer(r, head, keep_alive);
  return finished_ ? 1 : 0;
}

}  // namespace ringkv
