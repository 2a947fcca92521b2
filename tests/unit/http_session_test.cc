// HttpSession (server/http_session.h) driven with crafted bytes: no sockets.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/codec.h"
#include "server/http_session.h"

using namespace ringkv;

namespace {

struct Harness {
  HttpStats stats;
  std::vector<HttpRequest> seen;
  HttpSession session;

  explicit Harness(HttpOptions options = {})
      : session(std::move(options),
                [this](const HttpRequest& r) {
                  seen.push_back(r);
                  HttpResponse resp;
                  if (r.path == "/hello") {
                    resp.body = "hello";
                  } else {
                    resp.status = 404;
                    resp.body = "no";
                  }
                  return resp;
                },
                &stats) {}

  std::string Send(const std::string& bytes) {
    session.Feed(bytes);
    return session.TakeOutput();
  }
};

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("http: a GET is answered with status, length and body, and the connection stays open") {
  Harness h;
  std::string out = h.Send("GET /hello?x=1 HTTP/1.1\r\nHost: n1\r\n\r\n");
  CHECK(out.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(out.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(out.ends_with("\r\n\r\nhello"));
  CHECK(out.find("Connection: close") == std::string::npos);
  CHECK_FALSE(h.session.finished());
  REQUIRE(h.seen.size() == 1);
  CHECK(h.seen[0].path == "/hello");
  CHECK(h.seen[0].query == "x=1");
  CHECK(h.seen[0].method == "GET");
}

TEST_CASE("http: pipelined and split requests are answered in order") {
  Harness h;
  std::string req = "GET /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /nothing HTTP/1.1\r\nHost: a\r\n\r\n";
  std::string out;
  for (char c : req) out += h.Send(std::string(1, c));  // one byte at a time
  CHECK(Count(out, "HTTP/1.1 ") == 2);
  CHECK(out.find("200 OK") < out.find("404 Not Found"));
  CHECK_FALSE(h.session.finished());
}

TEST_CASE("http: HEAD has the headers of GET and no body") {
  Harness h;
  std::string out = h.Send("HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\n");
  CHECK(out.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(out.ends_with("\r\n\r\n"));
}

TEST_CASE("http: Connection: close and HTTP/1.0 end the connection after the answer") {
  Harness h;
  std::string out = h.Send("GET /hello HTTP/1.1\r\nConnection: close\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
  CHECK(Count(out, "HTTP/1.1 ") == 1);  // nothing after the close is answered
  CHECK(out.find("Connection: close") != std::string::npos);
  CHECK(h.session.finished());

  Harness old;
  out = old.Send("GET /hello HTTP/1.0\r\n\r\n");
  CHECK(old.session.finished());
  Harness old_keep;
  out = old_keep.Send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(out.find("Connection: keep-alive") != std::string::npos);
  CHECK_FALSE(old_keep.session.finished());
}

TEST_CASE("http: methods other than GET and HEAD get 405 and the connection stays usable") {
  Harness h;
  std::string out = h.Send("POST /hello HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /hello HTTP/1.1\r\n\r\n");
  CHECK(out.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
  CHECK(out.find("Allow: GET, HEAD\r\n") != std::string::npos);
  CHECK(out.find("200 OK") != std::string::npos);
  CHECK(h.seen.size() == 1);
  CHECK_FALSE(h.session.finished());
}

TEST_CASE("http: malformed requests get 400 and close") {
  for (std::string bad : {std::string("BLAH\r\n\r\n"), std::string("GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
                          std::string("GET / HTTP/9.9x\r\n\r\n"), std::string("\x16\x03\x01\x02\x00", 5)}) {
    CAPTURE(bad);
    Harness h;
    std::string out = h.Send(bad);
    CHECK(out.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    CHECK(out.find("Connection: close") != std::string::npos);
    CHECK(h.session.finished());
    CHECK(h.seen.empty());
    CHECK(h.stats.bad_requests == 1);
    // Nothing more is read.
    CHECK(h.Send("GET /hello HTTP/1.1\r\n\r\n").empty());
  }
}

TEST_CASE("http: headers and bodies over the limits get 431 and 413 and close") {
  HttpOptions o;
  o.max_header_bytes = 200;
  o.max_body_bytes = 10;
  Harness h(o);
  std::string out = h.Send("GET /hello HTTP/1.1\r\nX-Big: " + std::string(300, 'a') + "\r\n\r\n");
  CHECK(out.starts_with("HTTP/1.1 431 "));
  CHECK(h.session.finished());

  Harness b(o);
  out = b.Send("GET /hello HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
  CHECK(out.starts_with("HTTP/1.1 413 "));
  CHECK(b.session.finished());

  Harness chunked(o);
  out = chunked.Send("GET /hello HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" +
                     std::string(32, 'x') + "\r\n0\r\n\r\n");
  CHECK(out.starts_with("HTTP/1.1 413 "));
  CHECK(chunked.seen.empty());
}

TEST_CASE("http: a client that does not read its answers is disconnected") {
  HttpOptions o;
  o.max_output_bytes = 1000;
  Harness h(o);
  std::string req;
  for (int i = 0; i < 100; ++i) req += "GET /hello HTTP/1.1\r\n\r\n";
  h.session.Feed(req, /*unsent_bytes=*/0);
  std::string out = h.session.TakeOutput();
  CHECK(h.session.finished());
  CHECK(out.size() <= 1200);
  CHECK(h.seen.size() < 100);
  CHECK(h.stats.overflows == 1);
}

TEST_CASE("http: with an authorize hook, requests need Basic credentials it accepts") {
  HttpOptions o;
  o.authorize = [](std::string_view user, std::string_view password) {
    return user == "reader" && password == "s3cret";
  };
  Harness h(o);
  std::string out = h.Send("GET /hello HTTP/1.1\r\n\r\n");
  CHECK(out.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
  CHECK(out.find("WWW-Authenticate: Basic realm=\"ringkv\"") != std::string::npos);
  CHECK(h.seen.empty());
  CHECK_FALSE(h.session.finished());  // the browser asks again on the same connection

  out = h.Send("GET /hello HTTP/1.1\r\nAuthorization: Basic " + Base64Encode("reader:wrong") + "\r\n\r\n");
  CHECK(out.starts_with("HTTP/1.1 401 "));
  out = h.Send("GET /hello HTTP/1.1\r\nauthorization: basic " + Base64Encode("reader:s3cret") + "\r\n\r\n");
  CHECK(out.starts_with("HTTP/1.1 200 OK"));
  REQUIRE(h.seen.size() == 1);
  CHECK(h.seen[0].user == "reader");
  CHECK(h.stats.unauthorized == 2);
}
