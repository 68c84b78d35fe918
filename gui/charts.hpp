#pragma once
// The explorer's charts (Qt; issue 10): the plan scatter, the memory and step-time breakdowns of
// the selected plan, and the scaling sweep with its budget table. Each chart exports as PNG.
#include <QChartView>
#include <QWidget>
#include <string>
#include <vector>

#include "gui/explorer.hpp"
#include "strategies/step_report.hpp"

class QChart;
class QLabel;
class QScatterSeries;
class QTableWidget;
class QValueAxis;

namespace scaleplan::gui {

// A QChartView with "Export as PNG..." in its context menu.
class ChartView : public QChartView {
  Q_OBJECT
 public:
  explicit ChartView(QChart* chart, QWidget* parent = nullptr);
  bool export_png(const QString& path);  // renders the view; false when the file cannot be written

 protected:
  void contextMenuEvent(QContextMenuEvent* e) override;
};

// Throughput (tokens/s) against memory per GPU (GiB) of every feasible plan, one colour per family
// of the chosen colour scheme (plan_view.hpp), the Pareto front, the device capacity and the
// selected plan.
class PlanScatter : public QWidget {
  Q_OBJECT
 public:
  explicit PlanScatter(QWidget* parent = nullptr);
  void set_result(const ExplorerResult* r);  // nullptr: empty
  void set_scheme(int scheme);
  void set_selected(int index);  // index into result->search.top; -1: none
  void set_loaded_point(double mem_bytes, double tokens_per_s, bool show);
  int point_count() const;  // plans drawn
  QPointF point_of(int index) const;  // where plan `index` is drawn, in axis units
  int selected() const { return selected_; }
  ChartView* view() const { return view_; }
  QScatterSeries* family_series(int family) const;  // nullptr when out of range
  // The plan index a point of family `family` stands for (nearest point), -1 if none.
  int index_at(int family, const QPointF& p) const;

 signals:
  void plan_clicked(int index);

 private:
  void rebuild();
  const ExplorerResult* r_ = nullptr;
  int scheme_ = 0, selected_ = -1;
  double y_scale_ = 1;  // tokens/s per axis unit
  ChartView* view_;
  QChart* chart_;
  std::vector<QScatterSeries*> series_;
  std::vector<std::vector<int>> members_;  // per family: plan indices, in series point order
  QScatterSeries* sel_ = nullptr;
  QScatterSeries* loaded_ = nullptr;
};

// The selected plan's memory (stacked bar of params, grads, optimizer, activations, buffers
// against the device capacity) and step time (compute, exposed TP/CP, PP, DP communication,
// pipeline bubble, offload, host overhead).
class Breakdown : public QWidget {
  Q_OBJECT
 public:
  explicit Breakdown(QWidget* parent = nullptr);
  void set_report(const strategies::StepReport& r, const QString& what);
  void clear();
  // What the bars show (bytes / seconds, in legend order), for tests and the details panel.
  const std::vector<double>& memory_bytes() const { return mem_; }
  const std::vector<double>& time_s() const { return time_; }
  double capacity_bytes() const { return capacity_; }
  ChartView* memory_view() const { return mem_view_; }
  ChartView* time_view() const { return time_view_; }

 private:
  ChartView* mem_view_;
  ChartView* time_view_;
  std::vector<double> mem_, time_;
  double capacity_ = 0;
};

// Best plan per GPU count (200..20,000): throughput and scaling efficiency, with the budget (days,
// GPU-hours, dollars) of each count in a table.
class ScalingView : public QWidget {
  Q_OBJECT
 public:
  explicit ScalingView(QWidget* parent = nullptr);
  void set_result(const ExplorerResult* r);
  ChartView* view() const { return view_; }
  QTableWidget* table() const { return table_; }
  int point_count() const { return points_; }

 private:
  ChartView* view_;
  QTableWidget* table_;
  QLabel* caption_;
  int points_ = 0;
};

// Shared look.
QColor family_colour(int i);
QString fmt_bytes(double b);
QString fmt_seconds(double s);
QString fmt_count(double x);  // 1.23e6 -> "1.23 M"

}  // namespace scaleplan::gui
