// scaleplan-gui [--model M --cluster C --gpus N --gbs B --seq S] [--plan P] [--screenshot FILE.png [--size WxH]]
// The explorer (issue 10). --plan (a plan string or YAML file) is shown after the first search
// instead of the fastest plan. With --screenshot it runs the search to completion, renders the main
// window offscreen (QT_QPA_PLATFORM=offscreen unless set) to FILE.png and exits: 0 on success, 1
// when no plan fits, 2 on bad input or when the file cannot be written.
#include <QApplication>
#include <QCommandLineParser>
#include <QTimer>
#include <cstdio>
#include <cstring>

#include "common/errors.hpp"
#include "gui/main_window.hpp"
#ifdef SCALEPLAN_HAVE_DES
#include "simulator/des/simulate.hpp"
#endif

int main(int argc, char** argv) {
  // --screenshot renders offscreen; --help only prints: neither needs a display, and QApplication
  // aborts without one unless the platform is offscreen (QT_QPA_PLATFORM, when set, is kept).
  bool offscreen = false;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strcmp(a, "--screenshot") == 0 || std::strncmp(a, "--screenshot=", 13) == 0) offscreen = true;
    if (std::strcmp(a, "--help") == 0 || std::strcmp(a, "-h") == 0 || std::strcmp(a, "-?") == 0 ||
        std::strcmp(a, "--help-all") == 0)
      offscreen = true;
  }
  if (offscreen && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");

  QApplication app(argc, argv);
  QApplication::setApplicationName("scaleplan-gui");
  QCommandLineParser cli;
  cli.setApplicationDescription("scaleplan explorer: plan search, memory and time breakdowns, scaling, pipeline timeline");
  cli.addHelpOption();
  const QCommandLineOption model(QStringLiteral("model"), "model preset or YAML file (default gpt3-1.3b)", "M", "gpt3-1.3b");
  const QCommandLineOption cluster(QStringLiteral("cluster"), "cluster preset or YAML file (default selene-a100)", "C", "selene-a100");
  const QCommandLineOption gpus(QStringLiteral("gpus"), "GPU count (default 64)", "N", "64");
  const QCommandLineOption gbs(QStringLiteral("gbs"), "global batch (sequences; default 512)", "B", "512");
  const QCommandLineOption seq(QStringLiteral("seq"), "sequence length (default 0: the model's)", "S", "0");
  const QCommandLineOption plan(QStringLiteral("plan"), "plan to show after the search (plan string or YAML file)", "P");
  const QCommandLineOption shot(QStringLiteral("screenshot"), "search, render the window offscreen to FILE.png and exit", "FILE.png");
  const QCommandLineOption size(QStringLiteral("size"), "window size for --screenshot (default 1600x1000)", "WxH", "1600x1000");
  for (const auto* o : {&model, &cluster, &gpus, &gbs, &seq, &plan, &shot, &size}) cli.addOption(*o);
  cli.process(app);

  auto number = [&](const QCommandLineOption& o) {
    bool ok = false;
    const long long v = cli.value(o).toLongLong(&ok);
    if (!ok || v < 0) {
      std::fprintf(stderr, "scaleplan-gui: --%s must be a non-negative integer (got '%s')\n", qPrintable(o.names().first()),
                   qPrintable(cli.value(o)));
      std::exit(2);
    }
    return v;
  };
  scaleplan::gui::MainWindow w;
#ifdef SCALEPLAN_HAVE_DES
  // The Gantt from the SimGrid simulator (issue 7) when it is built; plans its rank programs do not
  // model (offload; zero_bubble with cross-node TP or all-gather CP; ep > 1 with zero=3: simulate
  // refuses them by key) fall back to the analytic
  // schedule, as the chart's label says.
  w.set_timeline_provider({"SimGrid simulation; analytic if unsupported",
                           [](const scaleplan::model::ModelSpec& m, const scaleplan::hw::Cluster& c,
                              const scaleplan::strategies::Plan& p) {
                             try {
                               return scaleplan::des::simulate(m, c, p, scaleplan::des::SimOptions{}).timeline;
                             } catch (const scaleplan::PlanError&) {
                               const scaleplan::analytic::Estimator est(m, c);
                               return scaleplan::gui::analytic_schedule_timeline(est, p);
                             }
                           }});
#endif
  w.set_inputs(cli.value(model), cli.value(cluster), number(gpus), number(gbs), number(seq));

  if (cli.isSet(plan)) {
    const QString p = cli.value(plan);
    auto* once = new QObject(&w);
    QObject::connect(&w, &scaleplan::gui::MainWindow::search_finished, once, [&w, p, once](bool ok) {
      if (ok) w.load_plan_from(p);
      once->deleteLater();
    });
  }
  if (!cli.isSet(shot)) {
    w.show();
    if (cli.isSet(model) || cli.isSet(cluster) || cli.isSet(gpus) || cli.isSet(plan)) QTimer::singleShot(0, &w, &scaleplan::gui::MainWindow::start_search);
    return app.exec();
  }

  const QStringList wh = cli.value(size).split('x');
  const int width = wh.size() == 2 ? wh[0].toInt() : 0, height = wh.size() == 2 ? wh[1].toInt() : 0;
  if (width < 640 || height < 400) {
    std::fprintf(stderr, "scaleplan-gui: --size must be WxH, at least 640x400 (got '%s')\n", qPrintable(cli.value(size)));
    return 2;
  }
  const QString file = cli.value(shot);
  w.resize(width, height);
  w.show();
  int rc = 0;
  QObject::connect(&w, &scaleplan::gui::MainWindow::error_shown, &app, [&](const QString& msg) {
    std::fprintf(stderr, "scaleplan-gui: %s\n", qPrintable(msg));
    rc = 2;
    app.exit(2);
  });
  QObject::connect(&w, &scaleplan::gui::MainWindow::search_finished, &app, [&](bool ok) {
    if (rc != 0) return;
    // Let the layouts settle, then render.
    QTimer::singleShot(50, &app, [&, ok] {
      if (!w.grab().save(file, "PNG", 0)) {  // 0: smallest file (highest zlib compression)
        std::fprintf(stderr, "scaleplan-gui: cannot write %s\n", qPrintable(file));
        app.exit(2);
        return;
      }
      std::printf("wrote %s (%dx%d)%s\n", qPrintable(file), w.width(), w.height(), ok ? "" : ": no feasible plan");
      app.exit(ok ? 0 : 1);
    });
  });
  QTimer::singleShot(0, &w, &scaleplan::gui::MainWindow::start_search);
  return app.exec();
}
