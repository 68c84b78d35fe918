#include "gui/serve_tab.hpp"

#include <QBarCategoryAxis>
#include <QBarSet>
#include <QChart>
#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHorizontalStackedBarSeries>
#include <QLabel>
#include <QLegend>
#include <QLegendMarker>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QPushButton>
#include <QScatterSeries>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>
#include <QValueAxis>
#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>

#include "common/presets.hpp"
#include "gui/charts.hpp"

namespace scaleplan::gui {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

QString q(const std::string& s) { return QString::fromStdString(s); }

QComboBox* preset_box(const char* kind, const QString& name, const char* object) {
  auto* c = new QComboBox;
  c->setEditable(true);  // a preset name or a path
  c->setInsertPolicy(QComboBox::NoInsert);
  for (const auto& n : preset_names(kind)) c->addItem(q(n));
  c->setCurrentText(name);
  c->setObjectName(object);
  c->setMinimumContentsLength(14);
  c->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  return c;
}

QSpinBox* spin(const char* object, int lo, int hi, int value, const QString& suffix) {
  auto* s = new QSpinBox;
  s->setObjectName(object);
  s->setRange(lo, hi);
  s->setValue(value);
  s->setSuffix(suffix);
  s->setGroupSeparatorShown(true);
  return s;
}

QString layout_text(const serve::Layout& l) {
  QString t = QString("tp=%1 pp=%2").arg(l.tp).arg(l.pp);
  if (l.ep > 1) t += QString(" ep=%1").arg(l.ep);
  return t + QString(" dp=%1 batch=%2").arg(l.dp).arg(l.batch);
}

QChart* chart(const QString& title) {
  auto* c = new QChart;
  c->setTitle(title);
  c->setAnimationOptions(QChart::NoAnimation);
  c->setMargins(QMargins(4, 4, 4, 4));
  c->legend()->setAlignment(Qt::AlignBottom);
  return c;
}

void clear_chart(QChart* c) {
  c->removeAllSeries();
  for (QAbstractAxis* a : c->axes()) {
    c->removeAxis(a);
    delete a;
  }
}

}  // namespace

ServeTab::ServeTab(QWidget* parent) : QWidget(parent) {
  setObjectName("serveTab");
  build_ui();
  draw_scatter();
  draw_memory();
}

ServeTab::~ServeTab() = default;

void ServeTab::build_ui() {
  auto* left = new QWidget;
  auto* ll = new QVBoxLayout(left);
  ll->setContentsMargins(6, 6, 6, 6);
  auto* box = new QGroupBox(tr("Serving inputs"));
  auto* form = new QFormLayout(box);
  form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  model_ = preset_box("models", "llama3-70b", "serveModel");
  model_->setToolTip(tr("a model preset (configs/models) or the path of a model YAML file"));
  cluster_ = preset_box("clusters", "dgx-h100", "serveCluster");
  cluster_->setToolTip(tr("a cluster preset (configs/clusters) or the path of a cluster YAML file"));
  form->addRow(tr("Model"), model_);
  form->addRow(tr("Cluster"), cluster_);
  gpus_ = spin("serveGpus", 1, 1'000'000, 8, "");
  prompt_ = spin("servePrompt", 1, 16'777'216, 1000, tr(" tokens"));
  output_ = spin("serveOutput", 1, 16'777'216, 1000, tr(" tokens"));
  form->addRow(tr("GPUs"), gpus_);
  form->addRow(tr("Prompt"), prompt_);
  form->addRow(tr("Output"), output_);
  precision_ = new QComboBox;
  precision_->setObjectName("servePrecision");
  precision_->addItems({"", "bf16", "fp8", "int8", "int4"});
  precision_->setItemText(0, tr("checkpoint's"));
  precision_->setToolTip(tr("weights / KV cache / GEMM precision (docs/serve.md); default: the checkpoint's"));
  form->addRow(tr("Precision"), precision_);
  run_btn_ = new QPushButton(tr("Find serving layouts"));
  run_btn_->setObjectName("serveRun");
  form->addRow(run_btn_);
  status_ = new QLabel(tr("Choose the inputs and press Find."));
  status_->setObjectName("serveStatus");
  status_->setWordWrap(true);
  form->addRow(status_);
  ll->addWidget(box);
  auto* sel = new QGroupBox(tr("Selected layout"));
  auto* sl = new QVBoxLayout(sel);
  details_ = new QLabel(tr("Click a point of the chart."));
  details_->setObjectName("serveDetails");
  details_->setWordWrap(true);
  details_->setTextFormat(Qt::RichText);
  details_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  details_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  sl->addWidget(details_);
  ll->addWidget(sel, 1);
  left->setFixedWidth(310);
  connect(run_btn_, &QPushButton::clicked, this, &ServeTab::run);

  scatter_view_ = new ChartView(chart(tr("Serving layouts")));
  memory_view_ = new ChartView(chart(tr("Memory per GPU")));
  memory_view_->chart()->legend()->setAlignment(Qt::AlignRight);
  auto* right = new QSplitter(Qt::Vertical);
  right->addWidget(scatter_view_);
  right->addWidget(memory_view_);
  right->setSizes({650, 300});
  auto* hl = new QHBoxLayout(this);
  hl->setContentsMargins(0, 0, 0, 0);
  hl->addWidget(left);
  hl->addWidget(right, 1);
}

void ServeTab::set_inputs(const QString& model, const QString& cluster, int gpus, int prompt_tokens, int output_tokens,
                          const QString& precision) {
  model_->setCurrentText(model);
  cluster_->setCurrentText(cluster);
  gpus_->setValue(gpus);
  prompt_->setValue(prompt_tokens);
  output_->setValue(output_tokens);
  const int i = precision_->findText(precision);
  precision_->setCurrentIndex(precision.isEmpty() || i < 0 ? 0 : i);
}

ServeInputs ServeTab::inputs() const {
  ServeInputs in;
  in.model = model_->currentText().trimmed().toStdString();
  in.cluster = cluster_->currentText().trimmed().toStdString();
  in.precision = precision_->currentIndex() == 0 ? "" : precision_->currentText().toStdString();
  in.gpus = gpus_->value();
  in.prompt_tokens = prompt_->value();
  in.output_tokens = output_->value();
  return in;
}

void ServeTab::run() {
  // The search answers in well under a second for 8 to 64 GPUs (docs/serve.md "Speed"): run it here.
  try {
    result_ = std::make_unique<ServeExploration>(explore_serve(inputs()));
    last_error_.clear();
  } catch (const std::exception& e) {
    result_.reset();
    last_error_ = q(e.what());
    status_->setText(tr("Error: %1").arg(last_error_));
    selected_ = -1;
    draw_scatter();
    draw_memory();
    emit run_finished(false);
    return;
  }
  const auto& s = result_->search;
  status_->setText(tr("%1 on %2 GPUs of %3, %4: %5 layouts x batches costed, %6 fit in memory, %7 on the Pareto front.%8")
                       .arg(q(result_->model))
                       .arg(gpus_->value())
                       .arg(q(result_->cluster), q(result_->precision))
                       .arg(s.evaluated)
                       .arg(result_->points.size())
                       .arg(s.front.size())
                       .arg(s.found ? QString() : tr(" Nothing feasible: %1").arg(q(s.reason))));
  draw_scatter();
  int best = -1;  // the search's best layout among the points
  for (int i = 0; i < static_cast<int>(result_->points.size()); ++i) {
    const serve::Layout& a = result_->points[i].layout;
    const serve::Layout& b = s.best.layout;
    if (s.found && a.tp == b.tp && a.pp == b.pp && a.ep == b.ep && a.dp == b.dp && a.batch == b.batch) best = i;
  }
  select_point(best);
  emit run_finished(s.found);
}

int ServeTab::point_count() const { return all_ ? all_->count() : 0; }
int ServeTab::front_count() const { return front_ ? front_->count() : 0; }

void ServeTab::draw_scatter() {
  QChart* c = scatter_view_->chart();
  clear_chart(c);
  all_ = new QScatterSeries;
  all_->setName(tr("layout x batch"));
  all_->setMarkerSize(7);
  all_->setColor(QColor("#4E79A7"));
  all_->setBorderColor(Qt::transparent);
  front_ = new QScatterSeries;
  front_->setName(tr("Pareto front"));
  front_->setMarkerSize(11);
  front_->setColor(QColor("#F28E2B"));
  front_->setBorderColor(QColor("#7A4A10"));
  auto* line = new QLineSeries;
  line->setName(tr("front"));
  line->setPen(QPen(QColor("#F28E2B"), 1.6));
  sel_ = new QScatterSeries;
  sel_->setName(tr("selected"));
  sel_->setMarkerSize(15);
  sel_->setColor(Qt::transparent);
  sel_->setBorderColor(QColor("#C0392B"));
  sel_->setPen(QPen(QColor("#C0392B"), 2.5));
  double xmin = std::numeric_limits<double>::max(), xmax = 0, ymax = 0;
  if (result_) {
    for (const serve::Result& r : result_->points) {
      const double x = 1e3 * r.latency.tpot_s, y = r.throughput.tokens_per_s_per_gpu;
      all_->append(x, y);
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymax = std::max(ymax, y);
    }
    for (const serve::Result& r : result_->search.front) {
      front_->append(1e3 * r.latency.tpot_s, r.throughput.tokens_per_s_per_gpu);
      line->append(1e3 * r.latency.tpot_s, r.throughput.tokens_per_s_per_gpu);
    }
  }
  c->setTitle(result_ ? tr("TPOT vs output tokens/s per GPU: %1 on %2 (%3)").arg(q(result_->model), q(result_->cluster), q(result_->precision))
                      : tr("Serving layouts (press Find)"));
  for (QAbstractSeries* s : std::initializer_list<QAbstractSeries*>{all_, line, front_, sel_}) c->addSeries(s);
  auto* x = new QLogValueAxis;
  x->setBase(10);
  x->setTitleText(tr("time per output token (ms, log scale)"));
  x->setLabelFormat("%g");
  x->setMinorTickCount(8);
  if (xmax > 0) x->setRange(xmin / 1.3, xmax * 1.3);
  else x->setRange(1, 1000);
  auto* y = new QValueAxis;
  y->setTitleText(tr("output tokens/s per GPU"));
  y->setRange(0, ymax > 0 ? ymax * 1.08 : 1);
  y->setLabelFormat("%g");
  if (ymax > 0) y->applyNiceNumbers();
  c->addAxis(x, Qt::AlignBottom);
  c->addAxis(y, Qt::AlignLeft);
  for (QAbstractSeries* s : c->series()) {
    s->attachAxis(x);
    s->attachAxis(y);
  }
  c->legend()->markers(line).first()->setVisible(false);
  connect(all_, &QScatterSeries::clicked, this, [this](const QPointF& p) { select_point(nearest(p)); });
  connect(front_, &QScatterSeries::clicked, this, [this](const QPointF& p) { select_point(nearest(p)); });
}

int ServeTab::nearest(const QPointF& p) const {
  if (!result_) return -1;
  int best = -1;
  double d = std::numeric_limits<double>::max();
  for (int i = 0; i < static_cast<int>(result_->points.size()); ++i) {
    const serve::Result& r = result_->points[i];
    // Compare on the axes' scales: log TPOT, linear throughput relative to the largest.
    const double dx = std::log10(std::max(1e-9, 1e3 * r.latency.tpot_s)) - std::log10(std::max(1e-9, p.x()));
    const double dy = (r.throughput.tokens_per_s_per_gpu - p.y()) / std::max(1.0, p.y());
    const double e = dx * dx + dy * dy;
    if (e < d) d = e, best = i;
  }
  return best;
}

void ServeTab::select_point(int index) {
  if (!result_ || index < 0 || index >= static_cast<int>(result_->points.size())) index = -1;
  selected_ = index;
  if (sel_) {
    sel_->clear();
    if (index >= 0) {
      const serve::Result& r = result_->points[index];
      sel_->append(1e3 * r.latency.tpot_s, r.throughput.tokens_per_s_per_gpu);
    }
  }
  draw_memory();
  if (index < 0) {
    details_->setText(result_ && !result_->search.found ? tr("No feasible layout: %1").arg(q(result_->search.reason))
                                                        : tr("Click a point of the chart."));
  } else {
    const serve::Result& r = result_->points[index];
    details_->setText(tr("<b>%1</b> (%2 GPUs per replica)<br>TTFT %3, TPOT %4, end to end %5<br>%6 output tokens/s per GPU, "
                         "%7 USD per M output tokens, %8 requests/s<br>largest batch that fits: %9")
                          .arg(layout_text(r.layout))
                          .arg(r.layout.tp * r.layout.pp)
                          .arg(fmt_seconds(r.latency.ttft_s), fmt_seconds(r.latency.tpot_s), fmt_seconds(r.latency.e2e_s))
                          .arg(r.throughput.tokens_per_s_per_gpu, 0, 'f', 1)
                          .arg(r.throughput.usd_per_m_tokens, 0, 'f', 3)
                          .arg(r.throughput.requests_per_s, 0, 'f', 2)
                          .arg(r.max_batch_fit));
  }
  emit layout_selected(index);
}

void ServeTab::draw_memory() {
  QChart* c = memory_view_->chart();
  clear_chart(c);
  mem_.clear();
  mem_total_ = capacity_ = 0;
  auto* series = new QHorizontalStackedBarSeries;
  series->setBarWidth(0.55);
  if (selected_ >= 0) {
    const serve::Result& r = result_->points[selected_];
    const serve::Memory& m = r.memory;
    mem_ = {m.weights, m.kv_cache, m.activations, m.buffers};
    mem_total_ = m.total();
    capacity_ = m.capacity;
    const std::pair<QString, const char*> parts[] = {
        {tr("weights"), "#4E79A7"}, {tr("KV cache"), "#E15759"}, {tr("activations"), "#B07AA1"}, {tr("buffers"), "#9C755F"}};
    for (size_t i = 0; i < mem_.size(); ++i) {
      auto* set = new QBarSet(QString("%1 %2").arg(parts[i].first, fmt_bytes(mem_[i])));
      *set << mem_[i] / kGiB;
      set->setColor(QColor(parts[i].second));
      set->setBorderColor(Qt::white);
      series->append(set);
    }
    const double free_b = std::max(0.0, capacity_ - mem_total_);
    auto* fr = new QBarSet(tr("free %1").arg(fmt_bytes(free_b)));
    *fr << free_b / kGiB;
    fr->setColor(QColor("#E8E8E8"));
    fr->setBorderColor(Qt::white);
    series->append(fr);
    c->setTitle(tr("Memory per GPU: %1 of %2 (%3)").arg(fmt_bytes(mem_total_), fmt_bytes(capacity_), layout_text(r.layout)));
  } else {
    c->setTitle(tr("Memory per GPU (select a layout)"));
  }
  c->addSeries(series);
  auto* cat = new QBarCategoryAxis;
  cat->append(QStringList{""});
  auto* val = new QValueAxis;
  val->setTitleText(tr("GiB (most-loaded GPU)"));
  val->setRange(0, capacity_ > 0 ? capacity_ / kGiB : 1);
  val->setLabelFormat("%g");
  c->addAxis(val, Qt::AlignBottom);
  c->addAxis(cat, Qt::AlignLeft);
  series->attachAxis(val);
  series->attachAxis(cat);
}

}  // namespace scaleplan::gui
