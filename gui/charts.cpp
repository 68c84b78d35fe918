#include "gui/charts.hpp"

#include <QBarCategoryAxis>
#include <QBarSet>
#include <QChart>
#include <QContextMenuEvent>
#include <QFileDialog>
#include <QHeaderView>
#include <QHorizontalStackedBarSeries>
#include <QLegendMarker>
#include <QLineSeries>
#include <QCategoryAxis>
#include <QLabel>
#include <QMenu>
#include <QMessageBox>
#include <QScatterSeries>
#include <QTableWidget>
#include <QToolTip>
#include <QCursor>
#include <QVBoxLayout>
#include <QValueAxis>
#include <algorithm>
#include <cmath>

#include "gui/plan_view.hpp"

namespace scaleplan::gui {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Tableau 10: distinct, colour-blind friendly.
const char* const kPalette[] = {"#4E79A7", "#F28E2B", "#59A14F", "#B07AA1", "#E15759",
                                "#76B7B2", "#EDC948", "#FF9DA7", "#9C755F", "#BAB0AC"};

QChart* new_chart(const QString& title) {
  auto* c = new QChart();
  c->setTitle(title);
  QFont f = c->titleFont();
  f.setBold(true);
  f.setPointSizeF(f.pointSizeF() * 1.05);
  c->setTitleFont(f);
  c->setAnimationOptions(QChart::NoAnimation);
  c->setMargins(QMargins(4, 4, 4, 4));
  c->legend()->setAlignment(Qt::AlignBottom);
  return c;
}

// Axis unit for a positive maximum: (divisor, prefix).
std::pair<double, QString> unit_for(double max) {
  if (max >= 1e12) return {1e12, "T"};
  if (max >= 1e9) return {1e9, "G"};
  if (max >= 1e6) return {1e6, "M"};
  if (max >= 1e3) return {1e3, "k"};
  return {1, ""};
}

// A round upper bound (1, 2, 2.5, 5 x 10^k) at or above x.
double nice_ceil(double x) {
  if (!(x > 0)) return 1;
  const double e = std::pow(10.0, std::floor(std::log10(x)));
  for (double m : {1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0})
    if (m * e >= x * (1 - 1e-12)) return m * e;
  return 10 * e;
}

}  // namespace

QColor family_colour(int i) { return QColor(kPalette[static_cast<size_t>(i) % (sizeof kPalette / sizeof *kPalette)]); }

QString fmt_bytes(double b) { return QString::number(b / kGiB, 'f', b / kGiB >= 10 ? 1 : 2) + " GiB"; }

QString fmt_seconds(double s) {
  if (s == 0) return "0 s";
  if (s >= 1) return QString::number(s, 'f', 3) + " s";
  if (s >= 1e-3) return QString::number(s * 1e3, 'f', s >= 0.1 ? 0 : 1) + " ms";
  return QString::number(s * 1e6, 'f', 0) + " us";
}

QString fmt_count(double x) {
  const auto [div, prefix] = unit_for(std::fabs(x));
  return QString::number(x / div, 'g', 3) + (prefix.isEmpty() ? "" : " " + prefix);
}

// ---------------------------------------------------------------------------------------------
ChartView::ChartView(QChart* chart, QWidget* parent) : QChartView(chart, parent) {
  setRenderHint(QPainter::Antialiasing);
  setMinimumSize(260, 180);
}

bool ChartView::export_png(const QString& path) { return grab().save(path, "PNG"); }

void ChartView::contextMenuEvent(QContextMenuEvent* e) {
  QMenu menu(this);
  QAction* act = menu.addAction(tr("Export as PNG..."));
  if (menu.exec(e->globalPos()) != act) return;
  const QString path = QFileDialog::getSaveFileName(this, tr("Export chart"), chart()->title().section(':', 0, 0) + ".png",
                                                    tr("PNG images (*.png)"));
  if (path.isEmpty()) return;
  if (!export_png(path)) QMessageBox::warning(this, tr("Export failed"), tr("Cannot write %1").arg(path));
}

// ---------------------------------------------------------------------------------------------
PlanScatter::PlanScatter(QWidget* parent) : QWidget(parent), chart_(new_chart(tr("Feasible plans"))) {
  view_ = new ChartView(chart_, this);
  auto* l = new QVBoxLayout(this);
  l->setContentsMargins(0, 0, 0, 0);
  l->addWidget(view_);
  chart_->legend()->setAlignment(Qt::AlignRight);
  rebuild();
}

void PlanScatter::set_result(const ExplorerResult* r) {
  r_ = r;
  selected_ = -1;
  rebuild();
}

void PlanScatter::set_scheme(int scheme) {
  if (scheme < 0 || scheme >= static_cast<int>(colour_schemes().size())) return;
  scheme_ = scheme;
  rebuild();
}

int PlanScatter::point_count() const {
  int n = 0;
  for (const auto& m : members_) n += static_cast<int>(m.size());
  return n;
}

QPointF PlanScatter::point_of(int index) const {
  if (!r_ || index < 0 || index >= static_cast<int>(r_->search.top.size())) return {};
  const auto& c = r_->search.top[static_cast<size_t>(index)];
  return {c.metrics.memory.total() / kGiB, c.metrics.throughput.tokens_per_s / y_scale_};
}

QScatterSeries* PlanScatter::family_series(int family) const {
  return family >= 0 && family < static_cast<int>(series_.size()) ? series_[static_cast<size_t>(family)] : nullptr;
}

int PlanScatter::index_at(int family, const QPointF& p) const {
  if (family < 0 || family >= static_cast<int>(series_.size())) return -1;
  const QScatterSeries* s = series_[static_cast<size_t>(family)];
  const auto& mem = members_[static_cast<size_t>(family)];
  // Nearest point in screen-like units (the axes' spans), so both axes weigh the same.
  const auto* ax = qobject_cast<QValueAxis*>(chart_->axes(Qt::Horizontal).value(0));
  const auto* ay = qobject_cast<QValueAxis*>(chart_->axes(Qt::Vertical).value(0));
  const double sx = ax ? std::max(1e-12, ax->max() - ax->min()) : 1, sy = ay ? std::max(1e-12, ay->max() - ay->min()) : 1;
  int best = -1;
  double best_d = 0;
  for (int i = 0; i < s->count() && i < static_cast<int>(mem.size()); ++i) {
    const QPointF q = s->at(i);
    const double d = std::pow((q.x() - p.x()) / sx, 2) + std::pow((q.y() - p.y()) / sy, 2);
    if (best < 0 || d < best_d) {
      best = i;
      best_d = d;
    }
  }
  return best < 0 ? -1 : mem[static_cast<size_t>(best)];
}

void PlanScatter::set_selected(int index) {
  selected_ = index;
  if (!sel_) return;
  sel_->clear();
  if (r_ && index >= 0 && index < static_cast<int>(r_->search.top.size())) sel_->append(point_of(index));
}

void PlanScatter::set_loaded_point(double mem_bytes, double tokens_per_s, bool show) {
  if (!loaded_) return;
  loaded_->clear();
  if (show) loaded_->append(mem_bytes / kGiB, tokens_per_s / y_scale_);
}

void PlanScatter::rebuild() {
  chart_->removeAllSeries();
  for (QAbstractAxis* a : chart_->axes()) {
    chart_->removeAxis(a);
    delete a;
  }
  series_.clear();
  members_.clear();
  sel_ = loaded_ = nullptr;
  const ColourScheme& sc = colour_schemes()[static_cast<size_t>(scheme_)];

  auto* ax = new QValueAxis;
  ax->setTitleText(tr("memory per GPU (GiB, most-loaded GPU)"));
  auto* ay = new QValueAxis;
  chart_->addAxis(ax, Qt::AlignBottom);
  chart_->addAxis(ay, Qt::AlignLeft);
  if (!r_ || r_->search.top.empty()) {
    chart_->setTitle(r_ ? tr("No feasible plan: %1").arg(QString::fromStdString(r_->search.reason).left(120)) : tr("Feasible plans (run a search)"));
    ax->setRange(0, 80);
    ay->setRange(0, 1);
    ay->setTitleText(tr("throughput (tokens/s)"));
    return;
  }
  const auto& top = r_->search.top;
  double max_tps = 0;
  for (const auto& c : top) max_tps = std::max(max_tps, c.metrics.throughput.tokens_per_s);
  const auto [div, prefix] = unit_for(max_tps);
  y_scale_ = div;
  ay->setTitleText(tr("throughput (%1tokens/s)").arg(prefix.isEmpty() ? "" : prefix + " "));
  ay->setRange(0, max_tps / div * 1.04);
  ay->setTickCount(7);
  ay->applyNiceNumbers();
  ay->setLabelFormat("%.3g");
  const double cap = top.front().metrics.memory.capacity;
  ax->setRange(0, cap / kGiB * 1.03);
  ax->setTickCount(9);
  ax->applyNiceNumbers();
  ax->setLabelFormat("%.0f");

  // One series per family, points appended fastest first (the top list's order).
  members_.assign(sc.families.size(), {});
  std::vector<QList<QPointF>> pts(sc.families.size());
  for (size_t i = 0; i < top.size(); ++i) {
    const int f = std::clamp(sc.family_of(top[i].plan), 0, static_cast<int>(sc.families.size()) - 1);
    members_[static_cast<size_t>(f)].push_back(static_cast<int>(i));
    pts[static_cast<size_t>(f)].append(QPointF(top[i].metrics.memory.total() / kGiB, top[i].metrics.throughput.tokens_per_s / div));
  }
  for (size_t f = 0; f < sc.families.size(); ++f) {
    auto* s = new QScatterSeries;
    s->setName(QString::fromStdString(sc.families[f]) + QString(" (%1)").arg(pts[f].size()));
    s->setMarkerSize(6.5);
    QColor col = family_colour(static_cast<int>(f));
    col.setAlpha(190);
    s->setColor(col);
    s->setBorderColor(col.darker(130));
    s->replace(pts[f]);
    chart_->addSeries(s);
    s->attachAxis(ax);
    s->attachAxis(ay);
    const int fam = static_cast<int>(f);
    connect(s, &QScatterSeries::clicked, this, [this, fam](const QPointF& p) {
      const int idx = index_at(fam, p);
      if (idx >= 0) emit plan_clicked(idx);
    });
    connect(s, &QScatterSeries::hovered, this, [this, fam](const QPointF& p, bool state) {
      const int idx = state ? index_at(fam, p) : -1;
      if (idx < 0 || !r_) {
        QToolTip::hideText();
        return;
      }
      const auto& c = r_->search.top[static_cast<size_t>(idx)];
      QToolTip::showText(QCursor::pos(), tr("#%1: %2\n%3 tokens/s, %4 per GPU, MFU %5%")
                                             .arg(idx + 1)
                                             .arg(QString::fromStdString(plan_label(c.plan)))
                                             .arg(fmt_count(c.metrics.throughput.tokens_per_s), fmt_bytes(c.metrics.memory.total()))
                                             .arg(100 * c.metrics.throughput.mfu, 0, 'f', 1),
                         view_);
    });
    series_.push_back(s);
    if (pts[f].isEmpty())
      for (QLegendMarker* m : chart_->legend()->markers(s)) m->setVisible(false);
  }

  // Pareto front (throughput vs headroom = vs memory), by memory.
  auto* front = new QLineSeries;
  front->setName(tr("Pareto front (%1)").arg(r_->search.pareto.size()));
  std::vector<QPointF> fp;
  for (const auto& c : r_->search.pareto) fp.emplace_back(c.metrics.memory.total() / kGiB, c.useful_tokens_per_s / div);
  std::sort(fp.begin(), fp.end(), [](const QPointF& a, const QPointF& b) { return a.x() < b.x(); });
  for (const auto& p : fp) front->append(p);
  front->setPen(QPen(QColor("#222222"), 1.6));
  chart_->addSeries(front);
  front->attachAxis(ax);
  front->attachAxis(ay);

  auto* capl = new QLineSeries;
  capl->setName(tr("HBM capacity (%1)").arg(fmt_bytes(cap)));
  capl->append(cap / kGiB, 0);
  capl->append(cap / kGiB, ay->max());
  capl->setPen(QPen(QColor("#C0392B"), 1.6, Qt::DashLine));
  chart_->addSeries(capl);
  capl->attachAxis(ax);
  capl->attachAxis(ay);

  sel_ = new QScatterSeries;
  sel_->setName(tr("selected"));
  sel_->setMarkerSize(17);
  sel_->setColor(Qt::transparent);
  sel_->setBorderColor(Qt::black);
  sel_->setPen(QPen(Qt::black, 2.5));
  chart_->addSeries(sel_);
  sel_->attachAxis(ax);
  sel_->attachAxis(ay);

  loaded_ = new QScatterSeries;
  loaded_->setName(tr("loaded plan"));
  loaded_->setMarkerShape(QScatterSeries::MarkerShapeRectangle);
  loaded_->setMarkerSize(13);
  loaded_->setColor(QColor("#C0392B"));
  chart_->addSeries(loaded_);
  loaded_->attachAxis(ax);
  loaded_->attachAxis(ay);
  for (QLegendMarker* m : chart_->legend()->markers(loaded_)) m->setVisible(false);
  connect(loaded_, &QScatterSeries::pointAdded, this, [this] {
    for (QLegendMarker* m : chart_->legend()->markers(loaded_)) m->setVisible(true);
  });

  const auto& m = r_->model;
  const auto& c = r_->cluster;
  const bool capped = r_->search.feasible > top.size();
  chart_->setTitle(tr("%1 feasible plans of %2 evaluated: %3 on %4 x %5, gbs %6, seq %7")
                       .arg(capped ? QString("%1 fastest of %2").arg(top.size()).arg(r_->search.feasible) : QString::number(top.size()))
                       .arg(r_->search.evaluated)
                       .arg(QString::fromStdString(m.name))
                       .arg(r_->inputs.gpus)
                       .arg(QString::fromStdString(c.device.name))
                       .arg(r_->inputs.gbs)
                       .arg(m.seq));
  set_selected(selected_);
}

// ---------------------------------------------------------------------------------------------
namespace {

// One horizontal stacked bar: `parts` (name, value) in `unit`, with an optional marker line.
struct Part {
  QString name;
  double value;
  const char* colour;
};

void fill_bar(QChart* chart, const QString& title, const QString& axis_title, const std::vector<Part>& parts, double unit,
              const QString& unit_name, double line_at, const QString& line_name) {
  chart->removeAllSeries();
  for (QAbstractAxis* a : chart->axes()) {
    chart->removeAxis(a);
    delete a;
  }
  chart->setTitle(title);
  auto* series = new QHorizontalStackedBarSeries;
  series->setBarWidth(0.55);
  double total = 0;
  for (const auto& [name, v, colour] : parts) {
    auto* set = new QBarSet(QString("%1 %2 %3").arg(name).arg(v / unit, 0, 'f', v / unit >= 10 ? 1 : 2).arg(unit_name));
    *set << v / unit;
    set->setColor(QColor(colour));
    set->setBorderColor(Qt::white);
    series->append(set);
    total += v / unit;
  }
  chart->addSeries(series);
  auto* cat = new QBarCategoryAxis;
  cat->append(QStringList{""});
  auto* val = new QValueAxis;
  val->setTitleText(axis_title);
  const double top = std::max(total, line_at > 0 ? line_at / unit : 0.0) * 1.03;
  val->setRange(0, top > 0 ? top : 1);
  val->setTickCount(6);
  if (top > 0) val->applyNiceNumbers();
  val->setLabelFormat("%g");
  chart->addAxis(val, Qt::AlignBottom);
  chart->addAxis(cat, Qt::AlignLeft);
  series->attachAxis(val);
  series->attachAxis(cat);
  if (line_at > 0) {
    auto* line = new QLineSeries;
    line->setName(line_name);
    line->append(line_at / unit, -0.5);
    line->append(line_at / unit, 0.5);
    line->setPen(QPen(QColor("#C0392B"), 2.2, Qt::DashLine));
    chart->addSeries(line);
    line->attachAxis(val);
    line->attachAxis(cat);
  }
}

}  // namespace

Breakdown::Breakdown(QWidget* parent) : QWidget(parent) {
  auto* mc = new_chart(tr("Memory per GPU"));
  auto* tc = new_chart(tr("Step time"));
  mc->legend()->setAlignment(Qt::AlignRight);
  tc->legend()->setAlignment(Qt::AlignRight);
  mem_view_ = new ChartView(mc, this);
  time_view_ = new ChartView(tc, this);
  auto* l = new QVBoxLayout(this);
  l->setContentsMargins(0, 0, 0, 0);
  l->setSpacing(2);
  l->addWidget(mem_view_);
  l->addWidget(time_view_);
  clear();
}

void Breakdown::clear() {
  mem_.clear();
  time_.clear();
  capacity_ = 0;
  fill_bar(mem_view_->chart(), tr("Memory per GPU (select a plan)"), tr("GiB"), {}, kGiB, "GiB", 0, "");
  fill_bar(time_view_->chart(), tr("Step time (select a plan)"), tr("seconds per step"), {}, 1, "s", 0, "");
}

void Breakdown::set_report(const strategies::StepReport& r, const QString& what) {
  const auto& m = r.memory;
  mem_ = {m.params, m.grads, m.optimizer, m.activations, m.buffers};
  capacity_ = m.capacity;
  fill_bar(mem_view_->chart(),
           tr("Memory per GPU: %1 of %2%3 (%4)").arg(fmt_bytes(m.total()), fmt_bytes(m.capacity), r.feasible ? "" : tr(", does not fit"), what),
           tr("GiB (most-loaded GPU: stage %1)").arg(r.most_loaded_stage),
           {{tr("params"), m.params, "#4E79A7"},
            {tr("grads"), m.grads, "#F28E2B"},
            {tr("optimizer"), m.optimizer, "#59A14F"},
            {tr("activations"), m.activations, "#B07AA1"},
            {tr("buffers"), m.buffers, "#9C755F"}},
           kGiB, "GiB", m.capacity, tr("HBM capacity %1").arg(fmt_bytes(m.capacity)));
  const auto& t = r.time;
  // The estimator's step = compute + exposed comm (TP/CP, PP, DP) + bubble + offload + host overhead.
  const double tpcp = r.tp_comm_exposed_s + r.cp_comm_exposed_s;
  const double other = std::max(0.0, t.step_s - t.compute_s - t.comm_exposed_s - t.bubble_s - t.offload_exposed_s);
  const double comm_rest = std::max(0.0, t.comm_exposed_s - tpcp - r.pp_comm_exposed_s - r.dp_comm_exposed_s);
  time_ = {t.compute_s, tpcp + comm_rest, r.pp_comm_exposed_s, r.dp_comm_exposed_s, t.bubble_s, t.offload_exposed_s, other};
  const bool ms = t.step_s < 1;
  fill_bar(time_view_->chart(),
           tr("Step time: %1, %2 tokens/s, MFU %3% (%4)")
               .arg(fmt_seconds(t.step_s), fmt_count(r.throughput.tokens_per_s))
               .arg(100 * r.throughput.mfu, 0, 'f', 1)
               .arg(what),
           ms ? tr("milliseconds per optimizer step") : tr("seconds per optimizer step"),
           {{tr("compute"), time_[0], "#4E79A7"},
            {tr("TP/CP comm"), time_[1], "#76B7B2"},
            {tr("PP p2p"), time_[2], "#59A14F"},
            {tr("DP sync"), time_[3], "#EDC948"},
            {tr("bubble"), time_[4], "#BAB0AC"},
            {tr("offload"), time_[5], "#B07AA1"},
            {tr("host overhead"), time_[6], "#9C755F"}},
           ms ? 1e-3 : 1, ms ? "ms" : "s", 0, "");
}

// ---------------------------------------------------------------------------------------------
ScalingView::ScalingView(QWidget* parent) : QWidget(parent) {
  view_ = new ChartView(new_chart(tr("Scaling")), this);
  table_ = new QTableWidget(this);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->verticalHeader()->setVisible(false);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setAlternatingRowColors(true);
  QFont f = table_->font();
  f.setPointSizeF(f.pointSizeF() * 0.9);
  table_->setFont(f);
  table_->verticalHeader()->setDefaultSectionSize(QFontMetrics(f).height() + 4);
  auto* l = new QVBoxLayout(this);
  l->setContentsMargins(0, 0, 0, 0);
  l->setSpacing(2);
  caption_ = new QLabel(this);
  caption_->setWordWrap(true);
  caption_->setContentsMargins(4, 0, 4, 0);
  l->addWidget(view_, 3);
  l->addWidget(caption_);
  l->addWidget(table_, 2);
  set_result(nullptr);
}

void ScalingView::set_result(const ExplorerResult* r) {
  QChart* chart = view_->chart();
  chart->removeAllSeries();
  for (QAbstractAxis* a : chart->axes()) {
    chart->removeAxis(a);
    delete a;
  }
  points_ = 0;
  const QStringList cols = {tr("GPUs"), tr("used"), tr("gbs"), tr("tokens/s"), tr("eff."), tr("MFU"), tr("days"), tr("GPU-hours"), tr("cost (USD)"),
                            tr("best plan")};
  table_->clear();
  table_->setColumnCount(cols.size());
  table_->setHorizontalHeaderLabels(cols);
  table_->setRowCount(0);
  // GPUs on a log scale: x = log10(GPUs), labelled at the sweep's counts.
  auto* ax = new QCategoryAxis;
  ax->setLabelsPosition(QCategoryAxis::AxisLabelsPositionOnValue);
  ax->setTitleText(tr("GPUs (log scale)"));
  auto* ay = new QValueAxis;
  auto* ae = new QValueAxis;
  ae->setTitleText(tr("efficiency %"));
  ae->setRange(0, 100);
  ae->setLabelFormat("%.0f");
  ae->setTickCount(6);
  chart->addAxis(ax, Qt::AlignBottom);
  chart->addAxis(ay, Qt::AlignLeft);
  chart->addAxis(ae, Qt::AlignRight);
  if (!r || r->scale.points.empty()) {
    chart->setTitle(tr("Scaling 200 to 20,000 GPUs (run a search)"));
    caption_->clear();
    for (long long n : default_scale_counts()) ax->append(fmt_count(static_cast<double>(n)).remove(' '), std::log10(static_cast<double>(n)));
    ax->setRange(std::log10(150.0), std::log10(27000.0));
    ay->setRange(0, 1);
    ay->setTitleText(tr("throughput (tokens/s)"));
    return;
  }
  double max_tps = 0, min_n = 1e18, max_n = 0;
  for (const auto& p : r->scale.points) {
    min_n = std::min(min_n, static_cast<double>(p.at.requested));
    max_n = std::max(max_n, static_cast<double>(p.at.requested));
    if (p.at.ok()) max_tps = std::max(max_tps, p.at.best().metrics.throughput.tokens_per_s);
  }
  const auto [div, prefix] = unit_for(max_tps);
  ay->setTitleText(tr("%1tokens/s").arg(prefix.isEmpty() ? "" : prefix + " "));
  ay->setRange(0, nice_ceil(max_tps / div * 1.05));
  ay->setLabelFormat("%.3g");
  ay->setTickCount(6);
  std::vector<long long> counts;
  for (const auto& p : r->scale.points) counts.push_back(p.at.requested);
  std::sort(counts.begin(), counts.end());
  counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  for (long long n : counts) ax->append(fmt_count(static_cast<double>(n)).remove(' '), std::log10(static_cast<double>(n)));
  ax->setRange(std::log10(min_n * 0.75), std::log10(max_n * 1.35));

  auto* tps = new QLineSeries;
  tps->setName(tr("throughput of the best plan"));
  tps->setPointsVisible(true);
  tps->setPen(QPen(family_colour(0), 2.4));
  auto* eff = new QLineSeries;
  eff->setName(tr("scaling efficiency vs %1 GPUs").arg(r->scale.base_index >= 0 ? r->scale.points[static_cast<size_t>(r->scale.base_index)].at.used : 0));
  eff->setPointsVisible(true);
  eff->setPen(QPen(family_colour(1), 2.0, Qt::DashLine));
  double max_eff = 1;
  for (const auto& p : r->scale.points)
    if (p.at.ok()) max_eff = std::max(max_eff, p.efficiency);
  const double eff_top = 20 * std::ceil(100 * max_eff * 1.02 / 20);  // ticks every 20%
  ae->setRange(0, eff_top);
  ae->setTickCount(static_cast<int>(eff_top / 20) + 1);
  const double price = r->cluster.price_usd_per_gpu_hour;
  for (size_t i = 0; i < r->scale.points.size(); ++i) {
    const auto& p = r->scale.points[i];
    const int row = table_->rowCount();
    table_->insertRow(row);
    auto put = [&](int col, const QString& s) {
      auto* it = new QTableWidgetItem(s);
      it->setTextAlignment(col == cols.size() - 1 ? Qt::AlignLeft | Qt::AlignVCenter : Qt::AlignRight | Qt::AlignVCenter);
      table_->setItem(row, col, it);
    };
    put(0, QString::number(p.at.requested));
    if (!p.at.ok()) {
      put(1, "-");
      put(cols.size() - 1, tr("no plan: %1").arg(QString::fromStdString(p.at.search.reason)));
      continue;
    }
    const auto& x = p.at.best();
    tps->append(std::log10(static_cast<double>(p.at.requested)), x.metrics.throughput.tokens_per_s / div);
    eff->append(std::log10(static_cast<double>(p.at.requested)), 100 * p.efficiency);
    ++points_;
    put(1, QString::number(p.at.used));
    put(2, QString::number(x.plan.gbs));
    put(3, fmt_count(x.metrics.throughput.tokens_per_s));
    put(4, QString::number(100 * p.efficiency, 'f', 0) + "%");
    put(5, QString::number(100 * x.metrics.throughput.mfu, 'f', 0) + "%");
    if (i < r->budgets.size() && r->budgets[i].at.ok()) {
      const auto& b = r->budgets[i];
      put(6, QString::number(b.days, 'f', b.days >= 10 ? 0 : 1));
      put(7, fmt_count(b.gpu_hours));
      put(8, price > 0 ? "$" + fmt_count(b.usd) : tr("no price"));
    }
    QString plan = QString::fromStdString(plan_label(x.plan));
    if (!p.at.note.empty()) {
      table_->item(row, 1)->setToolTip(QString::fromStdString(p.at.note));
      table_->item(row, 1)->setText(QString::number(p.at.used) + "*");
    }
    put(9, plan);
  }
  table_->resizeColumnsToContents();
  chart->addSeries(tps);
  tps->attachAxis(ax);
  tps->attachAxis(ay);
  chart->addSeries(eff);
  eff->attachAxis(ax);
  eff->attachAxis(ae);
  const double T = r->scale.tokens;
  chart->setTitle(tr("Scaling: best plan per GPU count, gbs %1").arg(r->inputs.scale_gbs_auto ? tr("auto") : QString::number(r->inputs.gbs)));
  caption_->setText(tr("Budget to train %1 tokens%2 at $%3 per GPU-hour (search ranked by time to train; * = a usable subset of "
                       "the GPUs, hover for why)")
                        .arg(fmt_count(T))
                        .arg(r->scale.tokens_default ? tr(" (20 per parameter, Hoffmann et al. 2022)") : "")
                        .arg(price, 0, 'f', 2));
}

}  // namespace scaleplan::gui
