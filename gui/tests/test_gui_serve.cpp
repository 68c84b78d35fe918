// The "Serve" tab (issue 20 item 4) driven through its widgets, headless (QT_QPA_PLATFORM=offscreen, set by
// ctest): a small case (Llama 3 8B on 8 H100s) runs the library's serving search; the scatter holds every
// costed layout that fits and the Pareto front; the selected layout's memory bars sum to its total (<= the
// capacity, the free share closing the bar); a click on a point selects it; bad input shows the error.
#include <QBarSet>
#include <QChart>
#include <QComboBox>
#include <QHorizontalStackedBarSeries>
#include <QPushButton>
#include <QScatterSeries>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTest>
#include <cmath>

#include "gui/charts.hpp"
#include "gui/main_window.hpp"
#include "gui/serve_tab.hpp"

using scaleplan::gui::ServeTab;

class TestGuiServe : public QObject {
  Q_OBJECT

  // Sets the inputs through the widgets and clicks the button; the run_finished(ok) argument.
  static bool run(ServeTab& t, const QString& model, int gpus, int prompt, int output, const QString& precision) {
    t.findChild<QComboBox*>("serveModel")->setCurrentText(model);
    t.findChild<QComboBox*>("serveCluster")->setCurrentText("dgx-h100");
    t.findChild<QSpinBox*>("serveGpus")->setValue(gpus);
    t.findChild<QSpinBox*>("servePrompt")->setValue(prompt);
    t.findChild<QSpinBox*>("serveOutput")->setValue(output);
    auto* p = t.findChild<QComboBox*>("servePrecision");
    p->setCurrentIndex(p->findText(precision));
    QSignalSpy done(&t, &ServeTab::run_finished);
    QTest::mouseClick(t.findChild<QPushButton*>("serveRun"), Qt::LeftButton);
    return !done.isEmpty() && done.first().at(0).toBool();
  }

 private slots:
  void windowHasServeTab() {
    scaleplan::gui::MainWindow w;
    auto* tabs = w.findChild<QTabWidget*>("tabs");
    QVERIFY(tabs);
    QCOMPARE(tabs->count(), 2);
    QCOMPARE(tabs->tabText(1), QString("Serve"));
    QVERIFY(w.serve_tab());
    QCOMPARE(tabs->widget(1), static_cast<QWidget*>(w.serve_tab()));
  }

  void smallCaseFillsScatterFrontAndMemory() {
    ServeTab t;
    t.resize(1200, 800);
    t.show();
    QVERIFY(QTest::qWaitForWindowExposed(&t));
    QVERIFY(run(t, "llama3-8b", 8, 1000, 1000, "fp8"));
    const auto* r = t.result();
    QVERIFY(r);
    QCOMPARE(QString::fromStdString(r->precision), QString("fp8"));
    // Every costed layout x batch that fits is a point; the front is a non-empty subset.
    QVERIFY(t.point_count() > 10);
    QCOMPARE(t.point_count(), static_cast<int>(r->points.size()));
    QVERIFY(static_cast<long long>(r->points.size()) <= r->search.evaluated);
    QVERIFY(t.front_count() >= 1);
    QVERIFY(t.front_count() <= t.point_count());
    QCOMPARE(t.front_count(), static_cast<int>(r->search.front.size()));
    // The best layout is selected; its memory bars sum to the total, within the capacity.
    QVERIFY(t.selected() >= 0);
    const auto& best = r->points[t.selected()];
    QCOMPARE(best.throughput.tokens_per_s_per_gpu, r->search.best.throughput.tokens_per_s_per_gpu);
    QCOMPARE(t.memory_bytes().size(), size_t(4));
    double sum = 0;
    for (double b : t.memory_bytes()) {
      QVERIFY(b >= 0);
      sum += b;
    }
    QVERIFY(std::fabs(sum - t.memory_total()) <= 1e-6 * t.memory_total());
    QVERIFY(std::fabs(t.memory_total() - best.memory.total()) <= 1e-6 * t.memory_total());
    QVERIFY(t.memory_bytes()[1] > 0);  // a KV cache
    QVERIFY(t.memory_total() <= t.capacity_bytes());
    // The drawn bar: the four parts plus the free share close at the capacity (GiB).
    auto bars = t.memory_view()->chart()->series();
    QCOMPARE(bars.size(), 1);
    auto* stacked = qobject_cast<QHorizontalStackedBarSeries*>(bars.first());
    QVERIFY(stacked);
    QCOMPARE(stacked->count(), 5);
    double drawn = 0;
    for (QBarSet* s : stacked->barSets()) drawn += s->at(0);
    QVERIFY(std::fabs(drawn - t.capacity_bytes() / (1024.0 * 1024 * 1024)) < 1e-6);
    // A click on a point selects the nearest layout and redraws the memory bar.
    const auto& other = r->points.front();
    QSignalSpy picked(&t, &ServeTab::layout_selected);
    emit t.layout_series()->clicked(QPointF(1e3 * other.latency.tpot_s, other.throughput.tokens_per_s_per_gpu));
    QCOMPARE(picked.count(), 1);
    QVERIFY(t.selected() >= 0);
    QCOMPARE(r->points[t.selected()].throughput.tokens_per_s_per_gpu, other.throughput.tokens_per_s_per_gpu);
    QVERIFY(std::fabs(t.memory_total() - other.memory.total()) <= 1e-6 * t.memory_total());
  }

  void badInputShowsTheError() {
    ServeTab t;
    QVERIFY(!run(t, "llama3-8b", 8, 9000, 100, "fp8"));  // llama3-8b's context is 8192 tokens
    QVERIFY(!t.result());
    QVERIFY2(t.last_error().contains("context"), qPrintable(t.last_error()));
    QCOMPARE(t.point_count(), 0);
    QCOMPARE(t.selected(), -1);
    QVERIFY(t.memory_bytes().empty());
  }
};

QTEST_MAIN(TestGuiServe)
#include "test_gui_serve.moc"
