#include "gui/main_window.hpp"

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QHeaderView>
#include <QTableWidget>
#include <QStatusBar>
#include <QTabWidget>
#include <QThread>
#include <QToolButton>
#include <QVBoxLayout>
#include <set>

#include "common/presets.hpp"
#include "gui/charts.hpp"
#include "gui/gantt_view.hpp"
#include "gui/plan_view.hpp"
#include "gui/serve_tab.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::gui {

struct MainWindow::Job {
  ExplorerResult result;
  bool failed = false;
  std::string error;
  std::shared_ptr<std::atomic<bool>> cancel;
};

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }

QComboBox* preset_combo(const std::string& kind, const QString& name) {
  auto* c = new QComboBox;
  c->setEditable(true);  // a preset name or a path
  c->setInsertPolicy(QComboBox::NoInsert);
  for (const auto& n : preset_names(kind)) c->addItem(q(n));
  c->setCurrentText(name);
  c->setObjectName(name);
  c->setMinimumContentsLength(14);
  c->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  return c;
}

QString schedule_label(const strategies::Plan& p) {
  switch (p.schedule) {
    case strategies::Schedule::gpipe: return "GPipe";
    case strategies::Schedule::one_f_one_b: return "1F1B";
    case strategies::Schedule::interleaved: return QString("interleaved 1F1B, v=%1").arg(p.vpp);
    case strategies::Schedule::zero_bubble: return "zero bubble";
  }
  return "?";
}

}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent), provider_(analytic_schedule_provider()) {
  setWindowTitle(tr("scaleplan explorer"));
  build_ui();
  build_menus();
}

MainWindow::~MainWindow() {
  if (worker_) {
    cancel_->store(true);
    worker_->wait();
    delete worker_;  // its finished() handler (queued to this window) will not run
  }
}

void MainWindow::build_ui() {
  auto* left = new QWidget;
  auto* ll = new QVBoxLayout(left);
  ll->setContentsMargins(6, 6, 6, 6);

  auto* in_box = new QGroupBox(tr("Inputs"));
  auto* form = new QFormLayout(in_box);
  form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  model_ = preset_combo("models", "gpt3-1.3b");
  model_->setObjectName("model");
  model_->setToolTip(tr("a model preset (configs/models) or the path of a model YAML file"));
  cluster_ = preset_combo("clusters", "selene-a100");
  cluster_->setObjectName("cluster");
  cluster_->setToolTip(tr("a cluster preset (configs/clusters) or the path of a cluster YAML file"));
  auto with_browse = [](QComboBox* c, const QString& tip) {
    auto* w = new QWidget;
    auto* h = new QHBoxLayout(w);
    h->setContentsMargins(0, 0, 0, 0);
    h->setSpacing(2);
    h->addWidget(c, 1);
    auto* b = new QToolButton;
    b->setText("...");
    b->setToolTip(tip);
    h->addWidget(b);
    return std::make_pair(w, b);
  };
  auto [mw, mb] = with_browse(model_, tr("open a model YAML file"));
  auto [cw, cb] = with_browse(cluster_, tr("open a cluster YAML file"));
  connect(mb, &QToolButton::clicked, this, &MainWindow::browse_model);
  connect(cb, &QToolButton::clicked, this, &MainWindow::browse_cluster);
  form->addRow(tr("Model"), mw);
  form->addRow(tr("Cluster"), cw);
  stack_ = preset_combo("stacks", "");
  stack_->insertItem(0, "");  // empty: the cluster's default stack
  stack_->setCurrentIndex(0);
  stack_->setObjectName("stack");
  stack_->setToolTip(tr("a software stack preset (configs/stacks) or the path of a stack YAML file; empty: the cluster's default"));
  form->addRow(tr("Stack"), stack_);
  gpus_ = new QSpinBox;
  gpus_->setObjectName("gpus");
  gpus_->setRange(1, 10'000'000);
  gpus_->setValue(64);
  gpus_->setGroupSeparatorShown(true);
  form->addRow(tr("GPUs"), gpus_);
  gbs_ = new QSpinBox;
  gbs_->setObjectName("gbs");
  gbs_->setRange(1, 100'000'000);
  gbs_->setValue(512);
  gbs_->setSuffix(tr(" sequences"));
  gbs_->setGroupSeparatorShown(true);
  form->addRow(tr("Global batch"), gbs_);
  seq_ = new QSpinBox;
  seq_->setObjectName("seq");
  seq_->setRange(0, 16'777'216);
  seq_->setSpecialValueText(tr("model's"));
  seq_->setSuffix(tr(" tokens"));
  seq_->setGroupSeparatorShown(true);
  form->addRow(tr("Sequence length"), seq_);
  scale_batch_ = new QComboBox;
  scale_batch_->setObjectName("scaleBatch");
  scale_batch_->addItems({tr("auto (large-batch model)"), tr("fixed (global batch)")});
  scale_batch_->setToolTip(tr("scaling sweep: the batch per GPU count is chosen by the McCandlish et al. 2018 model, or fixed"));
  form->addRow(tr("Scaling batch"), scale_batch_);
  auto* btns = new QHBoxLayout;
  search_btn_ = new QPushButton(tr("Search"));
  search_btn_->setObjectName("search");
  search_btn_->setDefault(true);
  cancel_btn_ = new QPushButton(tr("Cancel"));
  cancel_btn_->setObjectName("cancel");
  cancel_btn_->setEnabled(false);
  btns->addWidget(search_btn_);
  btns->addWidget(cancel_btn_);
  form->addRow(btns);
  progress_ = new QProgressBar;
  progress_->setObjectName("progress");
  progress_->setRange(0, 1000);
  progress_->setValue(0);
  progress_->setTextVisible(true);
  progress_->setFormat("%p%");
  form->addRow(progress_);
  status_ = new QLabel(tr("Choose the inputs and press Search."));
  status_->setObjectName("status");
  status_->setWordWrap(true);
  form->addRow(status_);
  connect(search_btn_, &QPushButton::clicked, this, &MainWindow::start_search);
  connect(cancel_btn_, &QPushButton::clicked, this, &MainWindow::cancel_search);
  ll->addWidget(in_box);

  auto* view_box = new QGroupBox(tr("Scatter"));
  auto* vf = new QFormLayout(view_box);
  colour_by_ = new QComboBox;
  colour_by_->setObjectName("colourBy");
  for (const auto& s : colour_schemes()) {
    colour_by_->addItem(QString::fromLatin1(s.name));
    colour_by_->setItemData(colour_by_->count() - 1, QString::fromLatin1(s.description), Qt::ToolTipRole);
  }
  vf->addRow(tr("Colour by"), colour_by_);
  ll->addWidget(view_box);

  auto* plan_box = new QGroupBox(tr("Selected plan"));
  auto* pl = new QVBoxLayout(plan_box);
  details_ = new QLabel(tr("Click a point of the scatter chart."));
  details_->setObjectName("details");
  details_->setWordWrap(true);
  details_->setTextFormat(Qt::RichText);
  details_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  details_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  pl->addWidget(details_, 1);
  auto* pb = new QHBoxLayout;
  save_btn_ = new QPushButton(tr("Save plan..."));
  save_btn_->setObjectName("savePlan");
  save_btn_->setEnabled(false);
  load_btn_ = new QPushButton(tr("Load plan..."));
  load_btn_->setObjectName("loadPlan");
  pin_btn_ = new QPushButton(tr("Pin for comparison"));
  pin_btn_->setObjectName("pinPlan");
  pin_btn_->setToolTip(tr("Keep this plan: the next plan you select is shown beside it"));
  pin_btn_->setEnabled(false);
  pb->addWidget(save_btn_);
  pb->addWidget(load_btn_);
  pb->addWidget(pin_btn_);
  connect(pin_btn_, &QPushButton::clicked, this, &MainWindow::toggle_pin);
  pl->addLayout(pb);
  connect(save_btn_, &QPushButton::clicked, this, &MainWindow::save_plan);
  connect(load_btn_, &QPushButton::clicked, this, &MainWindow::load_plan);
  ll->addWidget(plan_box);

  auto* top_box = new QGroupBox(tr("Fastest plans"));
  auto* tl = new QVBoxLayout(top_box);
  top_table_ = new QTableWidget(0, 3);
  top_table_->setObjectName("topPlans");
  top_table_->setHorizontalHeaderLabels({tr("tokens/s"), tr("GiB"), tr("plan")});
  top_table_->verticalHeader()->setVisible(true);
  top_table_->horizontalHeader()->setStretchLastSection(true);
  top_table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  top_table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  top_table_->setSelectionMode(QAbstractItemView::SingleSelection);
  QFont tf = top_table_->font();
  tf.setPointSizeF(tf.pointSizeF() * 0.85);
  top_table_->setFont(tf);
  top_table_->verticalHeader()->setDefaultSectionSize(QFontMetrics(tf).height() + 3);
  top_table_->verticalHeader()->setFont(tf);
  top_table_->horizontalHeader()->setFont(tf);
  connect(top_table_, &QTableWidget::cellClicked, this, [this](int row, int) { select_plan(row); });
  tl->addWidget(top_table_);
  ll->addWidget(top_box, 1);
  left->setFixedWidth(310);

  scatter_ = new PlanScatter;
  breakdown_ = new Breakdown;
  scaling_ = new ScalingView;
  gantt_ = new GanttView;
  connect(scatter_, &PlanScatter::plan_clicked, this, &MainWindow::select_plan);
  connect(colour_by_, qOverload<int>(&QComboBox::currentIndexChanged), scatter_, &PlanScatter::set_scheme);

  auto* top = new QSplitter(Qt::Horizontal);
  top->addWidget(scatter_);
  top->addWidget(breakdown_);
  top->setStretchFactor(0, 3);
  top->setStretchFactor(1, 2);
  auto* bottom = new QSplitter(Qt::Horizontal);
  bottom->addWidget(scaling_);
  bottom->addWidget(gantt_);
  bottom->setStretchFactor(0, 1);
  bottom->setStretchFactor(1, 1);
  auto* right = new QSplitter(Qt::Vertical);
  right->addWidget(top);
  right->addWidget(bottom);
  right->setStretchFactor(0, 1);
  right->setStretchFactor(1, 1);
  // Initial shares (the splitters keep the ratios when the window is resized).
  top->setSizes({800, 490});
  bottom->setSizes({640, 650});
  right->setSizes({520, 480});

  auto* central = new QWidget;
  auto* hl = new QHBoxLayout(central);
  hl->setContentsMargins(0, 0, 0, 0);
  hl->setSpacing(0);
  hl->addWidget(left);
  hl->addWidget(right, 1);
  // Two tabs: the training explorer above, and serving (issue 20: layouts, latency vs throughput, KV memory).
  auto* tabs = new QTabWidget;
  tabs->setObjectName("tabs");
  tabs->addTab(central, tr("Train"));
  serve_ = new ServeTab;
  tabs->addTab(serve_, tr("Serve"));
  setCentralWidget(tabs);
  resize(1600, 1000);
}

void MainWindow::build_menus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&Load plan..."), this, &MainWindow::load_plan)->setShortcut(QKeySequence::Open);
  file->addAction(tr("&Save plan..."), this, &MainWindow::save_plan)->setShortcut(QKeySequence::Save);
  QMenu* exp = file->addMenu(tr("&Export chart as PNG"));
  const std::pair<const char*, QString> charts[] = {{"scatter", tr("Plan scatter")},  {"memory", tr("Memory breakdown")},
                                                    {"time", tr("Step-time breakdown")}, {"scaling", tr("Scaling and budget")},
                                                    {"timeline", tr("Pipeline timeline")}, {"window", tr("Whole window")}};
  for (const auto& [key, label] : charts) {
    const QString k = QString::fromLatin1(key);
    exp->addAction(label, this, [this, k] {
      const QString path = QFileDialog::getSaveFileName(this, tr("Export %1").arg(k), k + ".png", tr("PNG images (*.png)"));
      if (!path.isEmpty() && !export_chart(k, path)) show_error(tr("Export failed"), tr("Cannot write %1").arg(path));
    });
  }
  file->addSeparator();
  file->addAction(tr("&Quit"), this, &QWidget::close)->setShortcut(QKeySequence::Quit);
  QMenu* run = menuBar()->addMenu(tr("&Search"));
  run->addAction(tr("&Run"), this, &MainWindow::start_search)->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
  run->addAction(tr("&Cancel"), this, &MainWindow::cancel_search)->setShortcut(QKeySequence(Qt::Key_Escape));
}

void MainWindow::set_inputs(const QString& model, const QString& cluster, long long gpus, long long gbs, long long seq) {
  model_->setCurrentText(model);
  cluster_->setCurrentText(cluster);
  gpus_->setValue(static_cast<int>(gpus));
  gbs_->setValue(static_cast<int>(gbs));
  seq_->setValue(static_cast<int>(seq));
}

ExplorerInputs MainWindow::inputs() const {
  ExplorerInputs in;
  in.model = model_->currentText().trimmed().toStdString();
  in.cluster = cluster_->currentText().trimmed().toStdString();
  in.stack = stack_->currentText().trimmed().toStdString();
  in.gpus = gpus_->value();
  in.gbs = gbs_->value();
  in.seq = seq_->value();
  in.scale_gbs_auto = scale_batch_->currentIndex() == 0;
  return in;
}

void MainWindow::set_timeline_provider(NamedTimelineProvider p) {
  provider_ = std::move(p);
  if (plan_ && report_) show_plan(*plan_, *report_, what_);
}

void MainWindow::show_error(const QString& title, const QString& message) {
  last_error_ = message;
  statusBar()->showMessage(title + ": " + message, 15000);
  auto* box = new QMessageBox(QMessageBox::Critical, title, message, QMessageBox::Ok, this);
  box->setObjectName("errorDialog");
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();  // window-modal, does not block the event loop
  emit error_shown(message);
}

void MainWindow::browse_model() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Open a model YAML"), QString(), tr("YAML files (*.yaml *.yml);;All files (*)"));
  if (path.isEmpty()) return;
  try {
    (void)model::load_model(path.toStdString());
    model_->setCurrentText(path);
  } catch (const std::exception& e) {
    show_error(tr("Bad model file"), QString::fromUtf8(e.what()));
  }
}

void MainWindow::browse_cluster() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Open a cluster YAML"), QString(), tr("YAML files (*.yaml *.yml);;All files (*)"));
  if (path.isEmpty()) return;
  try {
    (void)hw::load_cluster(path.toStdString());
    cluster_->setCurrentText(path);
  } catch (const std::exception& e) {
    show_error(tr("Bad cluster file"), QString::fromUtf8(e.what()));
  }
}

void MainWindow::start_search() {
  if (worker_) return;
  const ExplorerInputs in = inputs();
  try {
    (void)load_inputs(in);  // bad files fail here, on the GUI thread, with the typed error's message
  } catch (const std::exception& e) {
    show_error(tr("Cannot load the inputs"), QString::fromUtf8(e.what()));
    emit search_finished(false);
    return;
  }
  auto job = std::make_shared<Job>();
  cancel_ = std::make_shared<std::atomic<bool>>(false);
  job->cancel = cancel_;
  worker_ = QThread::create([this, in, job] {
    try {
      job->result = run_explorer(
          in,
          [this](double f, const std::string& line) {
            QMetaObject::invokeMethod(this, [this, f, l = QString::fromStdString(line)] { on_progress(f, l); }, Qt::QueuedConnection);
          },
          job->cancel.get());
    } catch (const std::exception& e) {
      job->failed = true;
      job->error = e.what();
    }
  });
  connect(worker_, &QThread::finished, this, [this, job] { finish(job); });
  search_btn_->setEnabled(false);
  cancel_btn_->setEnabled(true);
  progress_->setValue(0);
  status_->setText(tr("Searching %1 on %2 x %3...").arg(q(in.model), QString::number(in.gpus), q(in.cluster)));
  worker_->start();
}

void MainWindow::cancel_search() {
  if (!worker_) return;
  cancel_->store(true);
  status_->setText(tr("Cancelling..."));
}

void MainWindow::on_progress(double fraction, const QString& line) {
  if (!worker_) return;
  progress_->setValue(static_cast<int>(1000 * std::clamp(fraction, 0.0, 1.0)));
  status_->setText(line);
}

void MainWindow::finish(std::shared_ptr<Job> job) {
  worker_->deleteLater();
  worker_ = nullptr;
  search_btn_->setEnabled(true);
  cancel_btn_->setEnabled(false);
  if (job->failed) {
    progress_->setValue(0);
    status_->setText(tr("Failed."));
    show_error(tr("Search failed"), QString::fromUtf8(job->error.c_str()));
    emit search_finished(false);
    return;
  }
  if (job->result.cancelled) {
    progress_->setValue(0);
    status_->setText(result_ ? tr("Cancelled; the previous results stay.") : tr("Cancelled."));
    emit search_cancelled();
    return;
  }
  auto fresh = std::make_unique<ExplorerResult>(std::move(job->result));
  est_ = std::make_unique<analytic::Estimator>(fresh->model, fresh->cluster);
  scatter_->set_result(fresh.get());
  scaling_->set_result(fresh.get());
  result_ = std::move(fresh);
  fill_top_table();
  progress_->setValue(1000);
  const auto& s = result_->search;
  status_->setText(tr("%1 plans evaluated, %2 fit in memory (%3 s).")
                       .arg(s.evaluated)
                       .arg(s.feasible)
                       .arg(s.wall_s, 0, 'f', 2));
  selected_ = -1;
  plan_.reset();
  report_.reset();
  if (s.ok()) {
    select_plan(0);
  } else if (s.has_smallest) {
    // Nothing fits: show the plan that needs the least memory, and by how much it misses.
    status_->setText(tr("%1 plans evaluated, none fits in memory; shown: the one that needs the least.").arg(s.evaluated));
    show_plan(s.smallest.plan, est_->evaluate(s.smallest.plan), tr("least memory of all, does not fit"));
  } else {
    breakdown_->clear();
    status_->setText(tr("No feasible plan."));
    gantt_->set_message(tr("Pipeline timeline"), tr("no feasible plan: %1").arg(q(s.reason)));
    details_->setText(tr("<b>No feasible plan.</b><br>%1").arg(q(s.reason).toHtmlEscaped()));
    save_btn_->setEnabled(false);
  }
  emit search_finished(s.ok());
}

void MainWindow::select_plan(int index) {
  if (!result_ || !est_ || index < 0 || index >= static_cast<int>(result_->search.top.size())) return;
  const auto& c = result_->search.top[static_cast<size_t>(index)];
  selected_ = index;
  scatter_->set_selected(index);
  scatter_->set_loaded_point(0, 0, false);
  if (index < top_table_->rowCount()) top_table_->selectRow(index);
  else top_table_->clearSelection();
  show_plan(c.plan, est_->evaluate(c.plan), tr("#%1 of %2").arg(index + 1).arg(result_->search.top.size()));
  emit plan_selected(index);
}

void MainWindow::show_plan(const strategies::Plan& plan, const strategies::StepReport& r, const QString& what) {
  plan_ = plan;
  report_ = r;
  what_ = what;
  breakdown_->set_report(r, what);
  update_details();
  save_btn_->setEnabled(true);
  pin_btn_->setEnabled(true);
  const QString title = tr("Pipeline timeline (%1): %2, pp=%3, %4 microbatches")
                            .arg(q(provider_.label), schedule_label(plan))
                            .arg(plan.pp)
                            .arg(plan.microbatches());
  if (!provider_.fn) {
    gantt_->set_message(title, tr("no timeline provider"));
    return;
  }
  try {
    strategies::Timeline tl = provider_.fn(est_->model(), est_->cluster(), plan);
    // Rows are pipeline stages when the ranks are the stages' first GPUs (the analytic schedule).
    std::set<int> ranks;
    for (const auto& s : tl.spans) ranks.insert(s.rank);
    QStringList labels;
    bool stages = static_cast<int>(ranks.size()) == plan.pp;
    int i = 0;
    for (int rk : ranks) {
      stages = stages && rk == stage_rank(est_->cluster(), plan, i);
      labels << tr("stage %1 (rank %2)").arg(i++).arg(rk);
    }
    gantt_->set_timeline(std::move(tl), title, stages ? labels : QStringList{});
  } catch (const std::exception& e) {
    gantt_->set_message(title, tr("no timeline: %1").arg(QString::fromUtf8(e.what())));
  }
}

void MainWindow::update_details() {
  if (!plan_ || !report_) {
    details_->setText(tr("Click a point of the scatter chart."));
    return;
  }
  if (pinned_) {
    details_->setText(comparison_table(*pinned_));
    return;
  }
  const auto& r = *report_;
  QString plan = q(plan_->to_string());
  plan.replace(",", ", ");
  QString s = tr("<b>%1</b> %2<br><tt>%3</tt><br>").arg(what_.toHtmlEscaped(), selected_ == 0 ? tr("(fastest)") : "", plan.toHtmlEscaped());
  if (plan_->allow_uneven_layers) s += tr("<i>uneven pipeline stages (first/last hold fewer layers)</i><br>");
  if (!r.feasible) s += tr("<span style='color:#C0392B'><b>infeasible:</b> %1</span><br>").arg(q(r.reason).toHtmlEscaped());
  s += tr("<table cellspacing='0' cellpadding='1'>"
          "<tr><td>throughput&nbsp;&nbsp;</td><td align='right'>%1 tokens/s</td></tr>"
          "<tr><td>step time</td><td align='right'>%2</td></tr>"
          "<tr><td>MFU / HFU</td><td align='right'>%3% / %4%</td></tr>"
          "<tr><td>memory per GPU&nbsp;&nbsp;</td><td align='right'>%5 of %6</td></tr>"
          "<tr><td>pipeline bubble</td><td align='right'>%7</td></tr>"
          "<tr><td>exposed comm</td><td align='right'>%8</td></tr>"
          "</table>")
           .arg(fmt_count(r.throughput.tokens_per_s), fmt_seconds(r.time.step_s))
           .arg(100 * r.throughput.mfu, 0, 'f', 1)
           .arg(100 * r.throughput.hfu, 0, 'f', 1)
           .arg(fmt_bytes(r.memory.total()), fmt_bytes(r.memory.capacity), fmt_seconds(r.time.bubble_s), fmt_seconds(r.time.comm_exposed_s));
  details_->setText(s);
}

void MainWindow::toggle_pin() {
  if (pinned_) {
    pinned_.reset();
    pin_btn_->setText(tr("Pin for comparison"));
  } else if (plan_ && report_) {
    pinned_ = Pinned{*plan_, *report_, what_};
    pin_btn_->setText(tr("Unpin"));
  }
  update_details();
}

// The pinned plan (A) and the shown one (B) side by side: each quantity, and B / A.
QString MainWindow::comparison_table(const Pinned& a) const {
  const auto& ra = a.report;
  const auto& rb = *report_;
  QString s = tr("<b>A</b> (pinned) %1: <tt>%2</tt><br><b>B</b> %3: <tt>%4</tt><br>")
                  .arg(a.what.toHtmlEscaped(), q(plan_label(a.plan)).toHtmlEscaped(), what_.toHtmlEscaped(), q(plan_label(*plan_)).toHtmlEscaped());
  s += "<table cellspacing='0' cellpadding='1'><tr><th></th><th align='right'>A</th><th align='right'>B</th><th align='right'>B / A</th></tr>";
  const auto row = [&s](const QString& name, const QString& va, const QString& vb, double xa, double xb) {
    s += QString("<tr><td>%1&nbsp;&nbsp;</td><td align='right'>%2&nbsp;</td><td align='right'>%3&nbsp;</td><td align='right'>%4</td></tr>")
             .arg(name, va, vb, xa > 0 ? QString::number(xb / xa, 'f', 2) : QString("-"));
  };
  row(tr("tokens/s"), fmt_count(ra.throughput.tokens_per_s), fmt_count(rb.throughput.tokens_per_s), ra.throughput.tokens_per_s, rb.throughput.tokens_per_s);
  row(tr("step time"), fmt_seconds(ra.time.step_s), fmt_seconds(rb.time.step_s), ra.time.step_s, rb.time.step_s);
  row(tr("MFU"), QString::number(100 * ra.throughput.mfu, 'f', 1) + "%", QString::number(100 * rb.throughput.mfu, 'f', 1) + "%", ra.throughput.mfu,
      rb.throughput.mfu);
  row(tr("memory per GPU"), fmt_bytes(ra.memory.total()), fmt_bytes(rb.memory.total()), ra.memory.total(), rb.memory.total());
  row(tr("activations"), fmt_bytes(ra.memory.activations), fmt_bytes(rb.memory.activations), ra.memory.activations, rb.memory.activations);
  row(tr("pipeline bubble"), fmt_seconds(ra.time.bubble_s), fmt_seconds(rb.time.bubble_s), ra.time.bubble_s, rb.time.bubble_s);
  row(tr("exposed comm"), fmt_seconds(ra.time.comm_exposed_s), fmt_seconds(rb.time.comm_exposed_s), ra.time.comm_exposed_s, rb.time.comm_exposed_s);
  s += "</table>";
  if (!rb.feasible) s += tr("<span style='color:#C0392B'><b>B infeasible:</b> %1</span>").arg(q(rb.reason).toHtmlEscaped());
  return s;
}

void MainWindow::fill_top_table() {
  top_table_->setRowCount(0);
  if (!result_) return;
  const auto& top = result_->search.top;
  const int n = static_cast<int>(std::min<size_t>(10, top.size()));
  top_table_->setRowCount(n);
  for (int i = 0; i < n; ++i) {
    const auto& c = top[static_cast<size_t>(i)];
    auto* a = new QTableWidgetItem(fmt_count(c.metrics.throughput.tokens_per_s));
    a->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    auto* b = new QTableWidgetItem(QString::number(c.metrics.memory.total() / (1024.0 * 1024.0 * 1024.0), 'f', 1));
    b->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    auto* p = new QTableWidgetItem(q(plan_label(c.plan)));
    p->setToolTip(q(c.plan.to_string()));
    top_table_->setItem(i, 0, a);
    top_table_->setItem(i, 1, b);
    top_table_->setItem(i, 2, p);
  }
  top_table_->resizeColumnToContents(0);
  top_table_->resizeColumnToContents(1);
}

bool MainWindow::save_plan_to(const QString& path) {
  if (!plan_ || !report_ || !est_) {
    show_error(tr("No plan"), tr("Select a plan first."));
    return false;
  }
  try {
    const auto& r = *report_;
    char buf[200];
    std::snprintf(buf, sizeof buf, "predicted by the analytic estimator: %.4g tokens/s, step %.4g s, %.3g of %.3g GiB per GPU", r.throughput.tokens_per_s,
                  r.time.step_s, r.memory.total() / (1 << 30), r.memory.capacity / (1 << 30));
    save_plan_yaml(path.toStdString(), *plan_,
                   {"scaleplan plan (scaleplan-gui) for " + est_->model().name + " on " + std::to_string(plan_->gpus()) + " x " +
                        est_->cluster().device.name + " (" + est_->cluster().name + ")",
                    buf, "read back with: scaleplan estimate --plan FILE (or the GUI's Load plan)"});
    statusBar()->showMessage(tr("Saved %1").arg(path), 5000);
    return true;
  } catch (const std::exception& e) {
    show_error(tr("Cannot save the plan"), QString::fromUtf8(e.what()));
    return false;
  }
}

bool MainWindow::load_plan_from(const QString& path) {
  try {
    strategies::Plan p = strategies::load_plan(path.toStdString());
    if (!est_) {
      const LoadedInputs l = load_inputs(inputs());
      est_ = std::make_unique<analytic::Estimator>(l.model, l.cluster);
    }
    // A plan with dp is checked on its own GPU count; without, dp follows the GPU count input.
    p = strategies::resolve_plan(p, est_->model(), est_->cluster(), p.dp > 0 ? 0 : gpus_->value());
    if (result_)
      for (size_t i = 0; i < result_->search.top.size(); ++i)
        if (result_->search.top[i].plan.to_string() == p.to_string()) {
          select_plan(static_cast<int>(i));
          return true;
        }
    const strategies::StepReport r = est_->evaluate(p);
    selected_ = -1;
    scatter_->set_selected(-1);
    top_table_->clearSelection();
    scatter_->set_loaded_point(r.memory.total(), r.throughput.tokens_per_s, r.feasible);
    show_plan(p, r, tr("loaded %1").arg(QFileInfo(path).fileName()));
    emit plan_selected(-1);
    return true;
  } catch (const std::exception& e) {
    show_error(tr("Cannot load the plan"), QString::fromUtf8(e.what()));
    return false;
  }
}

void MainWindow::save_plan() {
  if (!plan_) {
    show_error(tr("No plan"), tr("Select a plan first."));
    return;
  }
  const QString path = QFileDialog::getSaveFileName(this, tr("Save plan"), "plan.yaml", tr("YAML files (*.yaml *.yml)"));
  if (!path.isEmpty()) save_plan_to(path);
}

void MainWindow::load_plan() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Load plan"), QString(), tr("YAML files (*.yaml *.yml);;All files (*)"));
  if (!path.isEmpty()) load_plan_from(path);
}

bool MainWindow::export_chart(const QString& which, const QString& path) {
  if (which == "scatter") return scatter_->view()->export_png(path);
  if (which == "memory") return breakdown_->memory_view()->export_png(path);
  if (which == "time") return breakdown_->time_view()->export_png(path);
  if (which == "scaling") return scaling_->grab().save(path, "PNG");
  if (which == "timeline") return gantt_->export_png(path);
  if (which == "window") return grab().save(path, "PNG");
  return false;
}

}  // namespace scaleplan::gui
