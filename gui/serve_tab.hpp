#pragma once
// The "Serve" tab of the explorer window (issue 20 item 4): model, cluster, GPUs, prompt and output tokens and
// precision; runs the serving layout search through the library (gui/serve_explorer.hpp, the search of
// `scaleplan serve`), draws TPOT against output tokens/s per GPU for every costed layout x batch with the Pareto
// front highlighted, and the memory per GPU of the selected layout (weights, KV cache, activations, buffers
// against the HBM capacity). Bad inputs show the typed error's message in the tab, never a crash.
#include <QWidget>
#include <memory>
#include <vector>

#include "gui/serve_explorer.hpp"

class QComboBox;
class QLabel;
class QPushButton;
class QScatterSeries;
class QSpinBox;

namespace scaleplan::gui {

class ChartView;

class ServeTab : public QWidget {
  Q_OBJECT
 public:
  explicit ServeTab(QWidget* parent = nullptr);
  ~ServeTab() override;

  void set_inputs(const QString& model, const QString& cluster, int gpus, int prompt_tokens, int output_tokens,
                  const QString& precision = QString());
  ServeInputs inputs() const;
  const ServeExploration* result() const { return result_.get(); }
  QString last_error() const { return last_error_; }

  int point_count() const;  // layouts x batches drawn
  int front_count() const;  // Pareto points drawn
  int selected() const { return selected_; }  // index into result()->points; -1: none
  // The selected layout's memory bars (bytes, in legend order: weights, KV cache, activations, buffers).
  const std::vector<double>& memory_bytes() const { return mem_; }
  double memory_total() const { return mem_total_; }
  double capacity_bytes() const { return capacity_; }
  ChartView* scatter_view() const { return scatter_view_; }
  ChartView* memory_view() const { return memory_view_; }
  QScatterSeries* layout_series() const { return all_; }

 signals:
  void run_finished(bool ok);  // ok: a feasible best layout
  void layout_selected(int index);

 public slots:
  void run();
  void select_point(int index);

 private:
  void build_ui();
  void draw_scatter();
  void draw_memory();
  int nearest(const QPointF& p) const;

  QComboBox *model_, *cluster_, *precision_;
  QSpinBox *gpus_, *prompt_, *output_;
  QPushButton* run_btn_;
  QLabel *status_, *details_;
  ChartView* scatter_view_;
  ChartView* memory_view_;
  QScatterSeries *all_ = nullptr, *front_ = nullptr, *sel_ = nullptr;
  std::unique_ptr<ServeExploration> result_;
  int selected_ = -1;
  std::vector<double> mem_;
  double mem_total_ = 0, capacity_ = 0;
  QString last_error_;
};

}  // namespace scaleplan::gui
