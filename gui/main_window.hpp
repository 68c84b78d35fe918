#pragma once
// The explorer's main window (issue 10): inputs (model, cluster: presets or files; GPUs; global
// batch; sequence length), a search on a worker thread with progress and Cancel, the plan scatter,
// the selected plan's memory / step-time breakdown and pipeline timeline, the scaling sweep with
// its budget, plan save/load (YAML) and PNG export of every chart. Bad inputs show a dialog with the
// typed error's message (file:line:field), never a crash.
#include <QMainWindow>
#include <QPointer>
#include <atomic>
#include <memory>
#include <optional>

#include "gui/explorer.hpp"
#include "gui/timeline_provider.hpp"

class QComboBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QThread;

namespace scaleplan::gui {

class PlanScatter;
class Breakdown;
class ScalingView;
class GanttView;
class ServeTab;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  // Inputs (what the widgets hold); gbs and seq as in ExplorerInputs.
  void set_inputs(const QString& model, const QString& cluster, long long gpus, long long gbs, long long seq = 0);
  ExplorerInputs inputs() const;
  // The Gantt's source; the default is analytic_schedule_provider(). The integrator plugs in the
  // SimGrid simulator's provider when simulator/des is built.
  void set_timeline_provider(NamedTimelineProvider p);
  const NamedTimelineProvider& timeline_provider() const { return provider_; }

  bool busy() const { return worker_ != nullptr; }
  const ExplorerResult* result() const { return result_.get(); }
  int selected() const { return selected_; }
  bool has_pinned() const { return pinned_.has_value(); }
  const std::optional<strategies::StepReport>& selected_report() const { return report_; }
  QString last_error() const { return last_error_; }

  PlanScatter* scatter() const { return scatter_; }
  Breakdown* breakdown() const { return breakdown_; }
  ScalingView* scaling() const { return scaling_; }
  GanttView* gantt() const { return gantt_; }
  ServeTab* serve_tab() const { return serve_; }  // the "Serve" tab (gui/serve_tab.hpp)

  // Chart names: scatter, memory, time, scaling, timeline, window. False on an unknown name or a write error.
  bool export_chart(const QString& which, const QString& path);
  // Plan files without the file dialogs (the menu actions call these). Errors go to show_error().
  bool save_plan_to(const QString& path);
  bool load_plan_from(const QString& path);

 signals:
  void search_finished(bool ok);  // ok: a result with at least one feasible plan
  void search_cancelled();
  void plan_selected(int index);  // -1: a loaded plan not among the results
  void error_shown(const QString& message);

 public slots:
  void start_search();
  void cancel_search();
  void select_plan(int index);

 private slots:
  void on_progress(double fraction, const QString& line);
  void browse_model();
  void browse_cluster();
  void save_plan();
  void load_plan();

 private:
  struct Job;
  void build_ui();
  void build_menus();
  void finish(std::shared_ptr<Job> job);
  void show_error(const QString& title, const QString& message);
  void show_plan(const strategies::Plan& plan, const strategies::StepReport& r, const QString& what);
  void update_details();
  void fill_top_table();

  QComboBox *model_, *cluster_, *colour_by_;
  QSpinBox *gpus_, *gbs_, *seq_;
  QComboBox* scale_batch_;
  QComboBox* stack_ = nullptr;  // software stack; "" = the cluster's default
  QPushButton *search_btn_, *cancel_btn_, *save_btn_, *load_btn_, *pin_btn_;
  QProgressBar* progress_;
  QLabel *status_, *details_;
  QTableWidget* top_table_;  // the 10 fastest plans; a click selects one
  PlanScatter* scatter_;
  Breakdown* breakdown_;
  ScalingView* scaling_;
  GanttView* gantt_;

  NamedTimelineProvider provider_;
  QThread* worker_ = nullptr;
  std::shared_ptr<std::atomic<bool>> cancel_;
  std::unique_ptr<ExplorerResult> result_;
  std::unique_ptr<analytic::Estimator> est_;
  int selected_ = -1;
  std::optional<strategies::Plan> plan_;  // selected or loaded
  std::optional<strategies::StepReport> report_;
  QString what_;
  QString last_error_;
  // "Pin for comparison": the plan shown beside the selected one (side by side, with the ratio).
  struct Pinned {
    strategies::Plan plan;
    strategies::StepReport report;
    QString what;
  };
  std::optional<Pinned> pinned_;
  void toggle_pin();
  QString comparison_table(const Pinned& a) const;
  ServeTab* serve_ = nullptr;
};

}  // namespace scaleplan::gui
