#include "gui/gantt_view.hpp"

#include <QContextMenuEvent>
#include <QFileDialog>
#include <QHelpEvent>
#include <QMenu>
#include <QMessageBox>
#include <QPainter>
#include <QToolTip>
#include <algorithm>
#include <cmath>
#include <set>

namespace scaleplan::gui {

using strategies::Span;
using strategies::SpanKind;

namespace {

constexpr int kTop = 46, kBottom = 38, kRight = 14;

// Forward / backward compute are told apart by the span name's first letter ("F ..." / "B ...").
QColor span_colour(const Span& s) {
  switch (s.kind) {
    case SpanKind::compute: return !s.name.empty() && s.name[0] == 'B' ? QColor("#F28E2B") : QColor("#4E79A7");
    case SpanKind::recompute: return QColor("#E15759");
    case SpanKind::comm: return QColor("#76B7B2");
    case SpanKind::optimizer: return QColor("#59A14F");
    case SpanKind::offload: return QColor("#B07AA1");
    case SpanKind::idle: return QColor("#BAB0AC");
  }
  return Qt::gray;
}

// A 1-2-5 tick step giving about `n` ticks over `span`.
double tick_step(double span, int n) {
  const double raw = span / std::max(1, n);
  const double e = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * e >= raw) return m * e;
  return 10 * e;
}

}  // namespace

GanttView::GanttView(QWidget* parent) : QWidget(parent) {
  setMinimumSize(300, 160);
  setAutoFillBackground(true);
  QPalette pal = palette();
  pal.setColor(QPalette::Window, Qt::white);
  setPalette(pal);
  setMouseTracking(true);
  set_message(tr("Pipeline timeline"), tr("select a plan"));
}

void GanttView::set_timeline(strategies::Timeline tl, const QString& title, const QStringList& row_labels) {
  labels_ = row_labels;
  tl_ = std::move(tl);
  std::set<int> r;
  for (const auto& s : tl_.spans) r.insert(s.rank);
  ranks_.assign(r.begin(), r.end());
  end_s_ = tl_.end_s();
  title_ = title;
  message_.clear();
  update();
}

void GanttView::set_message(const QString& title, const QString& message) {
  tl_ = {};
  ranks_.clear();
  labels_.clear();
  end_s_ = 0;
  title_ = title;
  message_ = message;
  update();
}

bool GanttView::export_png(const QString& path) { return grab().save(path, "PNG"); }

int GanttView::left_margin() const {
  QFont small = font();
  small.setPointSizeF(font().pointSizeF() * 0.85);
  const QFontMetrics fm(small);
  int w = fm.horizontalAdvance(tr("rank 0000"));
  for (const QString& l : labels_) w = std::max(w, fm.horizontalAdvance(l));
  return w + 14;
}

QRectF GanttView::plot_rect() const {
  const int kLeft = left_margin();
  return QRectF(kLeft, kTop, std::max(10, width() - kLeft - kRight), std::max(10, height() - kTop - kBottom)); }

const Span* GanttView::span_at(const QPoint& p) const {
  if (ranks_.empty() || end_s_ <= 0) return nullptr;
  const QRectF pr = plot_rect();
  if (!pr.contains(p)) return nullptr;
  const double row_h = pr.height() / static_cast<double>(ranks_.size());
  const int row = static_cast<int>((p.y() - pr.top()) / row_h);
  if (row < 0 || row >= static_cast<int>(ranks_.size())) return nullptr;
  const double t = (p.x() - pr.left()) / pr.width() * end_s_;
  const double slack = 2.0 / pr.width() * end_s_;  // 2 px
  for (const auto& s : tl_.spans)
    if (s.rank == ranks_[static_cast<size_t>(row)] && t >= s.start_s - slack && t <= s.start_s + s.dur_s + slack) return &s;
  return nullptr;
}

bool GanttView::event(QEvent* e) {
  if (e->type() == QEvent::ToolTip) {
    auto* he = static_cast<QHelpEvent*>(e);
    if (const Span* s = span_at(he->pos()))
      QToolTip::showText(he->globalPos(), QString("%1 (%2)\nrank %3: %4 ms + %5 ms")
                                              .arg(QString::fromStdString(s->name), strategies::name(s->kind))
                                              .arg(s->rank)
                                              .arg(s->start_s * 1e3, 0, 'f', 3)
                                              .arg(s->dur_s * 1e3, 0, 'f', 3));
    else
      QToolTip::hideText();
    return true;
  }
  return QWidget::event(e);
}

void GanttView::contextMenuEvent(QContextMenuEvent* e) {
  QMenu menu(this);
  QAction* act = menu.addAction(tr("Export as PNG..."));
  if (menu.exec(e->globalPos()) != act) return;
  const QString path = QFileDialog::getSaveFileName(this, tr("Export timeline"), "timeline.png", tr("PNG images (*.png)"));
  if (!path.isEmpty() && !export_png(path)) QMessageBox::warning(this, tr("Export failed"), tr("Cannot write %1").arg(path));
}

void GanttView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing, false);
  p.fillRect(rect(), Qt::white);
  QFont bold = font();
  bold.setBold(true);
  bold.setPointSizeF(font().pointSizeF() * 1.05);
  QFont small = font();
  small.setPointSizeF(font().pointSizeF() * 0.85);

  p.setFont(bold);
  p.setPen(Qt::black);
  p.drawText(QRect(8, 4, width() - 16, 20), Qt::AlignHCenter | Qt::AlignVCenter,
             QFontMetrics(bold).elidedText(title_, Qt::ElideRight, width() - 16));
  const QRectF pr = plot_rect();
  if (!message_.isEmpty() || ranks_.empty() || end_s_ <= 0) {
    p.setFont(font());
    p.setPen(Qt::darkGray);
    p.drawText(pr, Qt::AlignCenter | Qt::TextWordWrap, message_.isEmpty() ? tr("empty timeline") : message_);
    return;
  }

  // Legend (one line under the title).
  struct Item {
    QString name;
    QColor col;
  };
  const Item items[] = {{tr("forward"), QColor("#4E79A7")},  {tr("backward"), QColor("#F28E2B")}, {tr("recompute"), QColor("#E15759")},
                        {tr("communication"), QColor("#76B7B2")}, {tr("optimizer"), QColor("#59A14F")}, {tr("offload"), QColor("#B07AA1")},
                        {tr("host / idle"), QColor("#BAB0AC")}};
  p.setFont(small);
  const QFontMetrics sfm(small);
  const int kLeft = static_cast<int>(pr.left());
  int x = kLeft;
  // Only the kinds this timeline has (forward and backward always).
  std::set<QRgb> present;
  for (const auto& s : tl_.spans) present.insert(span_colour(s).rgb());
  for (const auto& it : items) {
    if (it.name != tr("forward") && it.name != tr("backward") && !present.count(it.col.rgb())) continue;
    p.fillRect(QRect(x, 27, 11, 11), it.col);
    p.setPen(Qt::black);
    p.drawText(x + 15, 37, it.name);
    x += 15 + sfm.horizontalAdvance(it.name) + 14;
  }

  // Rows, time grid, axis.
  const double row_h = pr.height() / static_cast<double>(ranks_.size());
  const double sx = pr.width() / end_s_;
  const double step = tick_step(end_s_ * 1e3, 8) / 1e3;
  p.setPen(QColor("#E6E6E6"));
  for (double t = 0; t <= end_s_ * (1 + 1e-9); t += step) p.drawLine(QPointF(pr.left() + t * sx, pr.top()), QPointF(pr.left() + t * sx, pr.bottom()));
  p.setPen(Qt::black);
  for (double t = 0; t <= end_s_ * (1 + 1e-9); t += step) {
    const double xx = pr.left() + t * sx;
    p.drawLine(QPointF(xx, pr.bottom()), QPointF(xx, pr.bottom() + 4));
    const QString lab = QString::number(t * 1e3, 'f', step * 1e3 >= 1 ? 0 : step * 1e3 >= 0.1 ? 1 : 2);
    p.drawText(QRectF(xx - 40, pr.bottom() + 5, 80, 14), Qt::AlignHCenter | Qt::AlignTop, lab);
  }
  p.drawText(QRectF(pr.left(), pr.bottom() + 19, pr.width(), 16), Qt::AlignHCenter | Qt::AlignTop, tr("time in the step (ms)"));
  p.setFont(small);
  const bool many = ranks_.size() > 24;
  for (size_t i = 0; i < ranks_.size(); ++i) {
    const double y = pr.top() + static_cast<double>(i) * row_h;
    if (i % 2 == 1) p.fillRect(QRectF(pr.left(), y, pr.width(), row_h), QColor("#F7F7F7"));
    if (!many || i % static_cast<size_t>(std::ceil(ranks_.size() / 24.0)) == 0)
      p.drawText(QRectF(2, y, kLeft - 6, row_h), Qt::AlignRight | Qt::AlignVCenter, i < static_cast<size_t>(labels_.size()) ? labels_[static_cast<int>(i)] : tr("rank %1").arg(ranks_[i]));
  }

  // Spans: a row's height minus a gap; labels ("mb3") where they fit.
  std::vector<double> row_y(ranks_.size());
  for (size_t i = 0; i < ranks_.size(); ++i) row_y[i] = pr.top() + static_cast<double>(i) * row_h;
  const double gap = std::min(3.0, row_h * 0.15);
  for (const auto& s : tl_.spans) {
    const auto it = std::lower_bound(ranks_.begin(), ranks_.end(), s.rank);
    const size_t row = static_cast<size_t>(it - ranks_.begin());
    const QRectF r(pr.left() + s.start_s * sx, row_y[row] + gap, std::max(1.0, s.dur_s * sx), row_h - 2 * gap);
    const QColor c = span_colour(s);
    p.fillRect(r, c);
    if (r.width() > 6) {
      p.setPen(QPen(c.darker(140), 0.6));
      p.drawRect(r);
    }
    if (s.kind == SpanKind::compute && r.height() >= 10) {
      // "F mb3 c1" -> "3" (or "3.1" with chunks) if it fits.
      const auto mb = s.name.find("mb");
      if (mb != std::string::npos) {
        QString lab = QString::fromStdString(s.name.substr(mb + 2));
        lab.replace(" c", ".");
        if (sfm.horizontalAdvance(lab) + 2 < r.width()) {
          p.setPen(Qt::white);
          p.drawText(r, Qt::AlignCenter, lab);
        }
      }
    }
  }
  p.setPen(Qt::black);
  p.drawRect(pr);
}

}  // namespace scaleplan::gui
