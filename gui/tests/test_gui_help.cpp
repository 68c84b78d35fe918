// `scaleplan-gui --help` (issue 18.6) prints its options and exits 0 without a display: run with
// QT_QPA_PLATFORM, DISPLAY and WAYLAND_DISPLAY removed from the environment (before the fix,
// QApplication aborted: "could not connect to display", exit 134).
#include <QCoreApplication>
#include <QProcess>
#include <QProcessEnvironment>
#include <cstdio>

namespace {

int fail(const char* what, const QString& out) {
  std::fprintf(stderr, "FAIL: %s\n--- output ---\n%s\n", what, qPrintable(out));
  return 1;
}

// Runs scaleplan-gui with `arg` and no display; 0 when it exits 0 and lists the options.
int check(const QString& arg) {
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  for (const char* v : {"QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"}) env.remove(QString::fromLatin1(v));
  QProcess p;
  p.setProcessEnvironment(env);
  p.setProcessChannelMode(QProcess::MergedChannels);
  p.start(QStringLiteral(SCALEPLAN_GUI_BIN), {arg});
  if (!p.waitForFinished(30000)) return fail("scaleplan-gui did not finish within 30 s", QString());
  const QString out = QString::fromLocal8Bit(p.readAll());
  std::printf("scaleplan-gui %s: exit %d, %lld bytes of output\n", qPrintable(arg), p.exitCode(), static_cast<long long>(out.size()));
  if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0) return fail("did not exit 0 without a display", out);
  for (const char* opt : {"--model", "--cluster", "--gpus", "--gbs", "--plan", "--screenshot", "--size"})
    if (!out.contains(QString::fromLatin1(opt))) return fail(opt, out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  QCoreApplication app(argc, argv);
  return check(QStringLiteral("--help")) | check(QStringLiteral("-h"));
}
