#pragma once
// The pipeline timeline (Gantt) of the selected plan (issue 10): one row per rank of a
// strategies::Timeline, spans coloured by kind (forward, backward, recompute, communication,
// optimizer, offload, idle), a time axis in ms, a legend, tooltips, and PNG export.
#include <QWidget>

#include "strategies/timeline.hpp"

namespace scaleplan::gui {

class GanttView : public QWidget {
  Q_OBJECT
 public:
  explicit GanttView(QWidget* parent = nullptr);
  // title: what produced it (e.g. "analytic schedule: 1F1B, pp=4, 8 microbatches"); row_labels:
  // one per distinct rank in ascending rank order (empty: "rank R").
  void set_timeline(strategies::Timeline tl, const QString& title, const QStringList& row_labels = {});
  void set_message(const QString& title, const QString& message);  // no timeline (error, nothing selected)
  const strategies::Timeline& timeline() const { return tl_; }
  int rows() const { return static_cast<int>(ranks_.size()); }
  bool export_png(const QString& path);
  QSize sizeHint() const override { return {640, 320}; }

 protected:
  void paintEvent(QPaintEvent*) override;
  bool event(QEvent* e) override;  // tooltips
  void contextMenuEvent(QContextMenuEvent* e) override;

 private:
  QRectF plot_rect() const;
  int left_margin() const;  // fits the row labels
  const strategies::Span* span_at(const QPoint& p) const;
  strategies::Timeline tl_;
  std::vector<int> ranks_;
  QString title_, message_;
  QStringList labels_;
  double end_s_ = 0;
};

}  // namespace scaleplan::gui
