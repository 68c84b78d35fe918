// The explorer window driven through its widgets (issue 10): inputs, Search, the finished signal,
// the scatter's points, a click on a point filling the breakdowns and the timeline, the colour
// schemes, Cancel, error dialogs for bad files, plan save/load, PNG export, and the timeline
// provider hook. Runs headless (QT_QPA_PLATFORM=offscreen, set by ctest).
#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QFile>
#include <QLabel>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QScatterSeries>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <cmath>

#include "gui/charts.hpp"
#include "gui/gantt_view.hpp"
#include "gui/main_window.hpp"
#include "gui/plan_view.hpp"

using scaleplan::gui::MainWindow;

class TestGuiWidgets : public QObject {
  Q_OBJECT

  // Sets the inputs through the widgets and clicks Search; true when search_finished(ok) came.
  static bool run_search(MainWindow& w, const QString& model, const QString& cluster, int gpus, int gbs, int seq = 0) {
    auto* m = w.findChild<QComboBox*>("model");
    auto* c = w.findChild<QComboBox*>("cluster");
    auto* g = w.findChild<QSpinBox*>("gpus");
    auto* b = w.findChild<QSpinBox*>("gbs");
    auto* s = w.findChild<QSpinBox*>("seq");
    auto* go = w.findChild<QPushButton*>("search");
    if (!m || !c || !g || !b || !s || !go) return false;
    m->setCurrentText(model);
    c->setCurrentText(cluster);
    g->setValue(gpus);
    b->setValue(gbs);
    s->setValue(seq);
    QSignalSpy done(&w, &MainWindow::search_finished);
    QTest::mouseClick(go, Qt::LeftButton);
    if (done.isEmpty() && !done.wait(60000)) return false;
    return done.first().at(0).toBool();
  }

  static QString tmp(const QTemporaryDir& d, const char* name) { return d.path() + "/" + name; }

 private slots:
  void searchFillsScatterAndClickSelects() {
    MainWindow w;
    w.resize(1400, 900);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(run_search(w, "gpt3-1.3b", "selene-a100", 64, 512));
    QVERIFY(!w.busy());
    const auto* r = w.result();
    QVERIFY(r != nullptr);
    QVERIFY(r->search.feasible > 0);
    QCOMPARE(static_cast<size_t>(w.scatter()->point_count()), r->search.top.size());
    QCOMPARE(static_cast<std::uint64_t>(w.scatter()->point_count()), r->search.feasible);  // every feasible plan drawn
    QCOMPARE(w.findChild<QProgressBar*>("progress")->value(), 1000);
    QCOMPARE(w.selected(), 0);  // the fastest is selected after a search
    QVERIFY(w.scaling()->point_count() > 0);
    QCOMPARE(w.findChild<QTableWidget*>("topPlans")->rowCount(), 10);

    // Click, with the mouse, on a point of the family drawn on top (the last one with points).
    int fam = -1;
    for (int f = 0; w.scatter()->family_series(f); ++f)
      if (w.scatter()->family_series(f)->count() > 0) fam = f;
    QVERIFY(fam >= 0);
    QScatterSeries* s = w.scatter()->family_series(fam);
    const QPointF pt = s->at(s->count() - 1);  // the slowest of the family: not the selected one
    QChartView* view = w.scatter()->view();
    const QPoint at = view->mapFromScene(view->chart()->mapToPosition(pt, s));
    QSignalSpy picked(&w, &MainWindow::plan_selected);
    QTest::mouseClick(view->viewport(), Qt::LeftButton, {}, at);
    QCOMPARE(picked.count(), 1);
    const int idx = picked.first().at(0).toInt();
    QVERIFY(idx > 0);
    QCOMPARE(w.selected(), idx);
    // The selected plan is the one under the cursor (within a marker's size), of the clicked family.
    const auto& c = r->search.top[static_cast<size_t>(idx)];
    QCOMPARE(scaleplan::gui::colour_schemes()[0].family_of(c.plan), fam);
    const QPointF sel = view->chart()->mapToPosition(w.scatter()->point_of(idx), s);
    const QPointF clicked = view->chart()->mapToPosition(pt, s);
    QVERIFY2(std::hypot(sel.x() - clicked.x(), sel.y() - clicked.y()) <= 8.0, "selected point not under the click");

    // The breakdowns hold the selected plan's numbers.
    QVERIFY(w.selected_report().has_value());
    const auto& rep = *w.selected_report();
    QCOMPARE(rep.plan.to_string(), c.plan.to_string());
    double mem = 0, time = 0;
    for (double v : w.breakdown()->memory_bytes()) mem += v;
    for (double v : w.breakdown()->time_s()) time += v;
    QVERIFY(std::fabs(mem - rep.memory.total()) <= 1e-9 * rep.memory.total());
    QVERIFY(std::fabs(time - rep.time.step_s) <= 1e-9 * rep.time.step_s);
    QCOMPARE(w.breakdown()->capacity_bytes(), r->cluster.device.hbm_bytes);
    QCOMPARE(w.breakdown()->memory_bytes().size(), 5u);
    QCOMPARE(w.breakdown()->time_s().size(), 7u);
    // The timeline: one row per pipeline stage, ending at (about) the step time.
    QCOMPARE(w.gantt()->rows(), c.plan.pp);
    QVERIFY(w.gantt()->timeline().end_s() > 0);
    QVERIFY(std::fabs(w.gantt()->timeline().end_s() - rep.time.step_s) <= 0.05 * rep.time.step_s);
    QVERIFY(w.findChild<QLabel*>("details")->text().contains(QString("mbs=%1").arg(c.plan.mbs)));

    // A row of the fastest-plans table selects that plan.
    auto* table = w.findChild<QTableWidget*>("topPlans");
    const QRect cell = table->visualItemRect(table->item(2, 0));
    QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, cell.center());
    QCOMPARE(w.selected(), 2);
  }

  void colourSchemesRegroupThePoints() {
    MainWindow w;
    QVERIFY(run_search(w, "gpt3-760m", "selene-a100", 16, 128));
    const int total = w.scatter()->point_count();
    QVERIFY(total > 0);
    auto* by = w.findChild<QComboBox*>("colourBy");
    QVERIFY(by && by->count() >= 4);
    for (int i = 0; i < by->count(); ++i) {
      by->setCurrentIndex(i);
      QCOMPARE(w.scatter()->point_count(), total);
      int sum = 0;
      for (int f = 0; w.scatter()->family_series(f); ++f) sum += w.scatter()->family_series(f)->count();
      QCOMPARE(sum, total);
    }
    by->setCurrentText("ZeRO stage");
    QVERIFY(w.scatter()->family_series(3) != nullptr);
    QVERIFY(w.scatter()->family_series(4) == nullptr);
  }

  void badFilesShowADialogNotACrash() {
    QTemporaryDir d;
    const QString bad = tmp(d, "bad_model.yaml");
    {
      QFile f(bad);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("name: broken\nlayers: -3\n");
    }
    MainWindow w;
    w.show();
    QSignalSpy err(&w, &MainWindow::error_shown);
    QVERIFY(!run_search(w, bad, "selene-a100", 64, 512));
    QCOMPARE(err.count(), 1);
    const QString msg = err.first().at(0).toString();
    QVERIFY2(msg.contains(bad), qPrintable(msg));  // the typed error names the file...
    QVERIFY2(msg.contains(":2") || msg.contains(":1"), qPrintable(msg));  // ...and the line
    auto* box = w.findChild<QMessageBox*>("errorDialog");
    QVERIFY(box != nullptr);
    QVERIFY(box->isVisible());
    QCOMPARE(box->text(), msg);
    box->close();
    QVERIFY(!w.busy());
    QVERIFY(w.result() == nullptr);

    // An unknown preset and a bad cluster file too.
    QVERIFY(!run_search(w, "no-such-model", "selene-a100", 64, 512));
    QVERIFY(w.last_error().contains("unknown model preset"));
    const QString badc = tmp(d, "bad_cluster.yaml");
    {
      QFile f(badc);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("name: x\ngpus_per_node: eight\n");
    }
    QVERIFY(!run_search(w, "gpt3-1.3b", badc, 64, 512));
    QVERIFY2(w.last_error().contains(badc), qPrintable(w.last_error()));

    // Nothing fits: a result, not an error (175B on 8 V100s without NVMe: offload cannot help).
    err.clear();
    QVERIFY(!run_search(w, "gpt3-175b", "yard-v100", 8, 8));
    QCOMPARE(err.count(), 0);
    QVERIFY(w.result() != nullptr);
    QVERIFY(!w.result()->search.ok());
    QCOMPARE(w.scatter()->point_count(), 0);
  }

  void cancelStopsTheSearch() {
    MainWindow w;
    QVERIFY(run_search(w, "gpt3-1.3b", "selene-a100", 64, 512));
    const auto* before = w.result();
    // ~2M plans (context parallelism at 128k tokens): seconds of work; cancelled at once.
    w.set_inputs("llama3-405b", "meta-h100-roce", 16384, 2048, 131072);
    QSignalSpy cancelled(&w, &MainWindow::search_cancelled);
    QSignalSpy finished(&w, &MainWindow::search_finished);
    QTest::mouseClick(w.findChild<QPushButton*>("search"), Qt::LeftButton);
    QVERIFY(w.busy());
    QVERIFY(w.findChild<QPushButton*>("cancel")->isEnabled());
    QTest::mouseClick(w.findChild<QPushButton*>("cancel"), Qt::LeftButton);
    QVERIFY(cancelled.wait(60000));
    QCOMPARE(finished.count(), 0);
    QVERIFY(!w.busy());
    QCOMPARE(w.result(), before);  // the previous results stay
    QVERIFY(w.findChild<QPushButton*>("search")->isEnabled());
  }

  void pinsAPlanAndComparesSideBySide() {
    MainWindow w;
    QVERIFY(run_search(w, "gpt3-1.3b", "selene-a100", 64, 512));
    auto* pin = w.findChild<QPushButton*>("pinPlan");
    auto* details = w.findChild<QLabel*>("details");
    QVERIFY(pin && details);
    w.select_plan(0);
    QVERIFY(pin->isEnabled());
    QTest::mouseClick(pin, Qt::LeftButton);
    QVERIFY(w.has_pinned());
    w.select_plan(2);
    // A and B side by side with the ratio column; B's label is the third plan's.
    const QString text = details->text();
    QVERIFY2(text.contains("B / A"), qPrintable(text));
    QVERIFY2(text.contains(QString::fromStdString(scaleplan::gui::plan_label(w.result()->search.top[2].plan)).toHtmlEscaped()), qPrintable(text));
    QTest::mouseClick(pin, Qt::LeftButton);  // unpin: back to the single-plan view
    QVERIFY(!w.has_pinned());
    QVERIFY(!details->text().contains("B / A"));
  }

  void savesAndLoadsPlans() {
    QTemporaryDir d;
    MainWindow w;
    QVERIFY(run_search(w, "gpt3-1.3b", "selene-a100", 64, 512));
    w.select_plan(3);
    const std::string chosen = w.result()->search.top[3].plan.to_string();
    const QString path = tmp(d, "plan.yaml");
    QVERIFY(w.save_plan_to(path));
    w.select_plan(0);
    QSignalSpy picked(&w, &MainWindow::plan_selected);
    QVERIFY(w.load_plan_from(path));
    QCOMPARE(picked.count(), 1);
    QCOMPARE(w.selected(), 3);  // found among the results
    QCOMPARE(w.selected_report()->plan.to_string(), chosen);

    // A plan that is not among them (it does not fit): shown as loaded, infeasible.
    const QString oom = tmp(d, "oom.yaml");
    {
      QFile f(oom);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("tp: 1\npp: 1\nmbs: 64\ngbs: 4096\nzero: 0\n");
    }
    QVERIFY(w.load_plan_from(oom));
    QCOMPARE(w.selected(), -1);
    QVERIFY(!w.selected_report()->feasible);
    QVERIFY(w.breakdown()->memory_bytes().size() == 5u);

    // A bad plan file: a dialog naming file:line and the key.
    const QString bad = tmp(d, "bad_plan.yaml");
    {
      QFile f(bad);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("tp: 2\nschedule: sideways\n");
    }
    QSignalSpy err(&w, &MainWindow::error_shown);
    QVERIFY(!w.load_plan_from(bad));
    QCOMPARE(err.count(), 1);
    const QString msg = err.first().at(0).toString();
    QVERIFY2(msg.contains(bad + ":2") && msg.contains("schedule"), qPrintable(msg));
    // A plan that does not divide the GPUs: the PlanError names the key.
    const QString wrong = tmp(d, "wrong.yaml");
    {
      QFile f(wrong);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("tp: 3\n");
    }
    QVERIFY(!w.load_plan_from(wrong));
    QVERIFY2(w.last_error().contains("tp"), qPrintable(w.last_error()));
  }

  void exportsEveryChartAsPng() {
    QTemporaryDir d;
    MainWindow w;
    w.resize(1400, 900);
    QVERIFY(run_search(w, "gpt3-1.3b", "selene-a100", 64, 512));
    for (const char* which : {"scatter", "memory", "time", "scaling", "timeline", "window"}) {
      const QString p = d.path() + "/" + which + ".png";
      QVERIFY2(w.export_chart(which, p), which);
      QImage img(p);
      QVERIFY2(!img.isNull() && img.width() > 100 && img.height() > 100, which);
    }
    QVERIFY(!w.export_chart("nonsense", d.path() + "/x.png"));
    QVERIFY(!w.export_chart("scatter", "/nonexistent-dir/x.png"));
  }

  // The integrator's hook: another provider (e.g. the SimGrid simulator's) replaces the analytic one.
  void timelineProviderIsPluggable() {
    MainWindow w;
    QCOMPARE(QString::fromStdString(w.timeline_provider().label), QString("analytic schedule"));
    QVERIFY(run_search(w, "gpt3-1.3b", "selene-a100", 64, 512));
    int calls = 0;
    w.set_timeline_provider({"test provider", [&calls](const scaleplan::model::ModelSpec&, const scaleplan::hw::Cluster&,
                                                       const scaleplan::strategies::Plan&) {
                               ++calls;
                               scaleplan::strategies::Timeline tl;
                               tl.spans.push_back({0, scaleplan::strategies::SpanKind::compute, "F mb0", 0.0, 1.0});
                               tl.spans.push_back({5, scaleplan::strategies::SpanKind::comm, "send", 1.0, 0.5});
                               tl.spans.push_back({9, scaleplan::strategies::SpanKind::compute, "B mb0", 1.5, 1.0});
                               return tl;
                             }});
    QCOMPARE(calls, 1);  // the shown plan is redrawn at once
    w.select_plan(1);
    QCOMPARE(calls, 2);
    QCOMPARE(w.gantt()->rows(), 3);
    QCOMPARE(w.gantt()->timeline().end_s(), 2.5);
    // A provider that throws leaves a message, not a crash.
    w.set_timeline_provider({"broken", [](const auto&, const auto&, const auto&) -> scaleplan::strategies::Timeline {
                               throw std::runtime_error("simulator not built");
                             }});
    QCOMPARE(w.gantt()->rows(), 0);
  }
};

QTEST_MAIN(TestGuiWidgets)
#include "test_gui_widgets.moc"
