#pragma once
// Runs the real `scaleplan` binary (path from the SCALEPLAN_BIN compile definition) as a child
// process and captures its exit status, stdout and stderr. Used by the CLI golden tests and the
// bad-input corpus. POSIX only (fork/exec), like the CI machines.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace scaleplan::testing {

struct CliResult {
  int exit_code = -1;    // valid when signal == 0
  int signal = 0;        // non-zero: the child was killed by this signal (a crash)
  std::string out, err;  // stdout, stderr
  std::string describe() const {
    std::ostringstream s;
    s << "exit=" << exit_code << " signal=" << signal << "\n--- stdout (" << out.size() << " bytes) ---\n"
      << out.substr(0, 2000) << "\n--- stderr ---\n" << err;
    return s.str();
  }
};

inline std::string slurp_fd(int fd) {
  std::string s;
  ::lseek(fd, 0, SEEK_SET);
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<std::size_t>(n));
  return s;
}

// Splits on blanks (the expectation table never needs quoting).
inline std::vector<std::string> split_args(const std::string& line) {
  std::vector<std::string> v;
  std::istringstream in(line);
  std::string w;
  while (in >> w) v.push_back(w);
  return v;
}

// Runs `binary args...` with working directory `cwd` (empty: inherit). Never throws.
inline CliResult run_cli(const std::vector<std::string>& args, const std::string& cwd = "",
                         const std::string& binary = SCALEPLAN_BIN) {
  CliResult r;
  char out_tpl[] = "/tmp/scaleplan-test-out-XXXXXX";
  char err_tpl[] = "/tmp/scaleplan-test-err-XXXXXX";
  const int out_fd = ::mkstemp(out_tpl);
  const int err_fd = ::mkstemp(err_tpl);
  if (out_fd < 0 || err_fd < 0) {
    r.err = "mkstemp failed";
    return r;
  }
  ::unlink(out_tpl);
  ::unlink(err_tpl);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::unsetenv("SCALEPLAN_CONFIG_DIR");  // the embedded presets only
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  if (pid < 0) {
    r.err = "fork failed";
    return r;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      r.err = "waitpid failed";
      return r;
    }
  }
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  else if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  r.out = slurp_fd(out_fd);
  r.err = slurp_fd(err_fd);
  ::close(out_fd);
  ::close(err_fd);
  return r;
}

}  // namespace scaleplan::testing
