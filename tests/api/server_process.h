// The real `tokenmill serve` as a child process for the API tests: started on 127.0.0.1 with
// port 0, its port read from the "listening on" line, and a tiny blocking HTTP client over
// loopback sockets (no HTTP library, so the tests exercise the server's own parsing).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace tokenmill::testing {

class ServerProcess {
 public:
  // Runs `tokenmill serve ARGS --listen 127.0.0.1:0`; waits until it listens (or fails).
  explicit ServerProcess(const std::vector<std::string>& args) {
    int err[2];
    if (::pipe(err) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(err[1], STDERR_FILENO);
      ::close(err[0]);
      ::close(err[1]);
      std::vector<std::string> all = {TOKENMILL_BINARY, "serve", "--listen", "127.0.0.1:0"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(err[1]);
    stderr_fd_ = err[0];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (port_ == 0 && std::chrono::steady_clock::now() < deadline) {
      if (!read_stderr(500)) break;
      const size_t at = log_.find("listening on http://127.0.0.1:");
      if (at != std::string::npos && log_.find('\n', at) != std::string::npos)
        port_ = std::atoi(log_.c_str() + at + std::string("listening on http://127.0.0.1:").size());
    }
  }

  ~ServerProcess() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stderr_fd_ >= 0) ::close(stderr_fd_);
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& log() {
    while (read_stderr(0)) {
    }
    return log_;
  }

  // Sends `sig` and waits for the exit; the exit code, or -1 when it did not exit in time or
  // died from a signal.
  int stop(int sig, int timeout_seconds = 30) {
    ::kill(pid_, sig);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return *exit_code_;
      }
      read_stderr(50);
    }
    return -1;
  }

 private:
  // Appends what stderr has (waiting up to timeout_ms); false at end of file.
  bool read_stderr(int timeout_ms) {
    pollfd p{stderr_fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return timeout_ms > 0;
    char buf[4096];
    const ssize_t n = ::read(stderr_fd_, buf, sizeof buf);
    if (n <= 0) return false;
    log_.append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  int port_ = 0;
  std::string log_;
  std::optional<int> exit_code_;
};

// A loopback connection speaking raw HTTP/1.1.
class Connection {
 public:
  explicit Connection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

  bool send(const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads until `marker` appears, the peer closes, or the timeout passes; returns all read.
  std::string read_until(const std::string& marker, int timeout_ms = 30000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while ((marker.empty() || received_.find(marker) == std::string::npos) && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      received_.append(buf, static_cast<size_t>(n));
    }
    return received_;
  }

 private:
  int fd_ = -1;
  std::string received_;
};

struct HttpReply {
  int status = 0;
  std::string head;
  std::string body;
};

// One request on its own connection (Connection: close), read to the end.
inline HttpReply http(int port, const std::string& method, const std::string& path, const std::string& body = {},
                      const std::string& extra_headers = {}) {
  Connection c(port);
  HttpReply r;
  if (!c.ok()) return r;
  c.send(method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  const std::string all = c.read_until("");
  const size_t split = all.find("\r\n\r\n");
  if (all.size() < 12 || split == std::string::npos) return r;
  r.status = std::atoi(all.c_str() + 9);
  r.head = all.substr(0, split);
  r.body = all.substr(split + 4);
  return r;
}

}  // namespace tokenmill::testing
