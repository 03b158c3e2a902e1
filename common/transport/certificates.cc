#include "common/transport/certificates.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"
#include "common/base/subprocess.h"

namespace ddlm {
namespace {

constexpr char kOpenssl[] = "/usr/bin/openssl";

absl::Status Openssl(std::vector<std::string> args) {
  args.insert(args.begin(), kOpenssl);
  std::string output;
  const int rc = RunBinary(args, &output);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("openssl ", args.size() > 1 ? args[1] : "", " failed (exit ", rc, "): ", output));
  }
  return absl::OkStatus();
}

bool IsIpAddress(const std::string& host) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 || inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

absl::Status MakeDirectory(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Signs <stem>.csr's key with the CA in `dir` into <stem>.pem, with `extensions`.
absl::Status Sign(const std::string& dir, const std::string& stem, const std::string& subject,
                  const std::string& extensions) {
  const std::string tmp = absl::StrCat(dir, "/.", stem, "-", ::getpid());
  DDLM_RETURN_IF_ERROR(WriteFileAtomically(tmp + ".ext", extensions));
  absl::Status made = Openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                               "-keyout", tmp + ".key", "-out", tmp + ".csr", "-subj", subject});
  if (made.ok()) {
    made = Openssl({"x509", "-req", "-in", tmp + ".csr", "-CA", dir + "/ca.pem", "-CAkey", dir + "/ca.key",
                    "-CAcreateserial", "-CAserial", dir + "/ca.srl", "-days", "825", "-sha256", "-extfile",
                    tmp + ".ext", "-out", tmp + ".pem"});
  }
  if (made.ok() && ::chmod((tmp + ".key").c_str(), 0600) != 0) {
    made = absl::InternalError(absl::StrCat("cannot chmod ", tmp, ".key: ", std::strerror(errno)));
  }
  // The key first: a certificate never stands without its key.
  if (made.ok() && ::rename((tmp + ".key").c_str(), (dir + "/" + stem + ".key").c_str()) != 0) {
    made = absl::InternalError(absl::StrCat("cannot rename into ", dir, ": ", std::strerror(errno)));
  }
  if (made.ok() && ::rename((tmp + ".pem").c_str(), (dir + "/" + stem + ".pem").c_str()) != 0) {
    made = absl::InternalError(absl::StrCat("cannot rename into ", dir, ": ", std::strerror(errno)));
  }
  for (const char* suffix : {".ext", ".csr", ".key", ".pem"}) ::unlink((tmp + suffix).c_str());
  return made;
}

}  // namespace

absl::Status WriteSecretFile(const std::string& path, const std::string& contents) {
  const std::string tmp = absl::StrCat(path, ".tmp-", ::getpid());
  // A fresh file of our own: a stale one (any mode) or a planted symlink is not reused.
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  absl::Status written = ::fchmod(fd, 0600) == 0
                             ? absl::OkStatus()
                             : absl::InternalError(absl::StrCat("cannot chmod ", tmp, ": ", std::strerror(errno)));
  if (written.ok()) written = WriteAll(fd, contents, tmp);
  if (written.ok() && ::fsync(fd) != 0) {
    written = absl::InternalError(absl::StrCat("cannot fsync ", tmp, ": ", std::strerror(errno)));
  }
  ::close(fd);
  if (written.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    written = absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", std::strerror(errno)));
  }
  if (!written.ok()) ::unlink(tmp.c_str());
  return written;
}

absl::StatusOr<std::string> NewToken() {
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open /dev/urandom: ", std::strerror(errno)));
  unsigned char bytes[32];
  const ssize_t n = ::read(fd, bytes, sizeof(bytes));
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof(bytes))) return absl::InternalError("short read from /dev/urandom");
  std::string hex;
  for (unsigned char b : bytes) absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
  return hex;
}

absl::StatusOr<CertificateFiles> MakeCertificates(const std::string& dir, const std::vector<std::string>& hosts) {
  // Host names go into openssl's extension file: letters, digits, '.', '-' and ':' only.
  for (const std::string& host : hosts) {
    for (char ch : host) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != ':') {
        return absl::InvalidArgumentError(
            absl::StrCat("host '", host, "' is not a host name or IP address (letters, digits, '.', '-', ':')"));
      }
    }
  }
  DDLM_RETURN_IF_ERROR(MakeDirectory(dir));
  const std::string tmp = absl::StrCat(dir, "/.ca-", ::getpid());
  absl::Status made =
      Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
               tmp + ".key", "-out", tmp + ".pem", "-days", "3650", "-sha256", "-subj", "/CN=ddlm CA"});
  if (made.ok() && ::chmod((tmp + ".key").c_str(), 0600) != 0) {
    made = absl::InternalError(absl::StrCat("cannot chmod ", tmp, ".key: ", std::strerror(errno)));
  }
  if (made.ok() && (::rename((tmp + ".key").c_str(), (dir + "/ca.key").c_str()) != 0 ||
                    ::rename((tmp + ".pem").c_str(), (dir + "/ca.pem").c_str()) != 0)) {
    made = absl::InternalError(absl::StrCat("cannot rename into ", dir, ": ", std::strerror(errno)));
  }
  ::unlink((tmp + ".key").c_str());
  ::unlink((tmp + ".pem").c_str());
  DDLM_RETURN_IF_ERROR(made);
  std::vector<std::string> names = {"DNS:localhost", "IP:127.0.0.1"};
  for (const std::string& host : hosts) {
    if (host.empty()) continue;
    names.push_back(absl::StrCat(IsIpAddress(host) ? "IP:" : "DNS:", host));
  }
  DDLM_RETURN_IF_ERROR(Sign(dir, "server", "/CN=ddlm coordinator",
                            absl::StrCat("subjectAltName=", absl::StrJoin(names, ","),
                                         "\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                                         "extendedKeyUsage=serverAuth\n")));
  return CertificateFiles{dir + "/ca.pem", dir + "/ca.key", dir + "/server.pem", dir + "/server.key"};
}

absl::StatusOr<std::pair<std::string, std::string>> MakeClientCertificate(const std::string& dir,
                                                                          const std::string& name) {
  if (name.empty() || name.find_first_of("/ \t\n") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("client certificate name '", name, "' is empty or has / or spaces"));
  }
  const std::string stem = "client-" + name;
  DDLM_RETURN_IF_ERROR(Sign(dir, stem, "/CN=" + name,
                            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                            "extendedKeyUsage=clientAuth\n"));
  return std::make_pair(dir + "/" + stem + ".pem", dir + "/" + stem + ".key");
}

}  // namespace ddlm
