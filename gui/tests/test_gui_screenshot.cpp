// `scaleplan-gui --screenshot FILE.png` (issue 10): runs the search to completion, renders the
// window offscreen and exits 0; the PNG has the requested size and is not blank (many distinct
// colours, most pixels not the background, the chart colours present).
#include <QCoreApplication>
#include <QFile>
#include <QImage>
#include <QProcess>
#include <QSet>
#include <cstdio>

int fail(const char* what) {
  std::fprintf(stderr, "FAIL: %s\n", what);
  return 1;
}

int main(int argc, char** argv) {
  QCoreApplication app(argc, argv);
  const QString out = argc > 1 ? QString::fromLocal8Bit(argv[1]) : QStringLiteral("gui_screenshot_test.png");
  QFile::remove(out);
  QProcess p;
  p.setProcessChannelMode(QProcess::ForwardedChannels);
  p.start(QStringLiteral(SCALEPLAN_GUI_BIN), {"--screenshot", out, "--model", "gpt3-1.3b", "--cluster", "selene-a100", "--gpus", "64",
                                               "--gbs", "512", "--size", "1280x800"});
  if (!p.waitForFinished(90000)) return fail("scaleplan-gui did not finish within 90 s");
  if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0) {
    std::fprintf(stderr, "exit code %d\n", p.exitCode());
    return fail("scaleplan-gui --screenshot did not exit 0");
  }
  QImage img(out);
  if (img.isNull()) return fail("no readable PNG written");
  if (img.width() != 1280 || img.height() != 800) {
    std::fprintf(stderr, "size %dx%d\n", img.width(), img.height());
    return fail("the PNG does not have the requested 1280x800 size");
  }
  img = img.convertToFormat(QImage::Format_RGB32);
  // Histogram on a 4-pixel grid: distinct colours and the share of the most common one.
  QHash<QRgb, int> hist;
  int n = 0;
  for (int y = 0; y < img.height(); y += 2)
    for (int x = 0; x < img.width(); x += 2) {
      ++hist[img.pixel(x, y)];
      ++n;
    }
  int most = 0;
  for (int c : hist) most = std::max(most, c);
  const double dominant = static_cast<double>(most) / n;
  std::printf("%lld distinct colours, the most common covers %.1f%% of the pixels\n", static_cast<long long>(hist.size()), 100 * dominant);
  if (hist.size() < 200) return fail("fewer than 200 distinct colours: the window looks blank");
  if (dominant > 0.8) return fail("one colour covers more than 80% of the window: blank");
  // Chart colours (Tableau 10 blue of the scatter / forward spans, orange of backward spans) are drawn.
  auto near = [](QRgb a, QRgb b) {
    return std::abs(qRed(a) - qRed(b)) + std::abs(qGreen(a) - qGreen(b)) + std::abs(qBlue(a) - qBlue(b)) < 12;
  };
  int blue = 0, orange = 0;
  for (auto it = hist.begin(); it != hist.end(); ++it) {
    if (near(it.key(), qRgb(0x4E, 0x79, 0xA7))) blue += it.value();
    if (near(it.key(), qRgb(0xF2, 0x8E, 0x2B))) orange += it.value();
  }
  std::printf("blue %d, orange %d pixels (of %d sampled)\n", blue, orange, n);
  if (blue < 200 || orange < 200) return fail("the chart colours are missing: charts not drawn");
  std::printf("PASS\n");
  return 0;
}
