// scaleplan-plot SPEC.json OUT.(png|svg): renders one chart described in JSON, offscreen, with QtCharts.
// The CLI's `--plot FILE` (estimate, search, scale, budget) writes the spec and runs this program, so
// the CLI itself never links Qt (DESIGN.md sec. 2: Qt stays in gui/). Spec (all keys required unless noted):
//   {"title": "...", "kind": "line" | "scatter" | "bar",
//    "x_label": "...", "y_label": "...", "x_log": false (optional), "y_log": false (optional),
//    "series": [{"name": "...", "points": [[x, y], ...]}]                     (line, scatter)
//    "categories": ["...", ...], "series": [{"name": "...", "values": [...]}]  (bar: stacked, one bar per category)}
//   Each series may carry "color": "#rrggbb"; the title may hold "\n" (a second, smaller line).
// Exit 0 written; 2 bad spec or unwritable file (one line on stderr).
#include <QApplication>
#include <QBarCategoryAxis>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QPainter>
#include <QScatterSeries>
#include <QStackedBarSeries>
#include <QSvgGenerator>
#include <QValueAxis>
#include <algorithm>
#include <cmath>
#include <cstdio>

namespace {

[[noreturn]] void fail(const QString& msg) {
  std::fprintf(stderr, "scaleplan-plot: %s\n", qPrintable(msg));
  std::exit(2);
}

QAbstractAxis* make_axis(bool log, const QString& label) {
  QAbstractAxis* a = nullptr;
  if (log) {
    auto* l = new QLogValueAxis;
    l->setBase(10);
    l->setLabelFormat("%g");
    a = l;
  } else {
    auto* v = new QValueAxis;
    v->setLabelFormat("%g");
    a = v;
  }
  a->setTitleText(label);
  return a;
}

void add_xy(QChart* chart, const QJsonObject& spec, bool scatter) {
  auto* ax = make_axis(spec["x_log"].toBool(), spec["x_label"].toString());
  auto* ay = make_axis(spec["y_log"].toBool(), spec["y_label"].toString());
  chart->addAxis(ax, Qt::AlignBottom);
  chart->addAxis(ay, Qt::AlignLeft);
  // The axes span every series (an axis attached to several series keeps the first one's range).
  double x0 = 0, x1 = 0, y0 = 0, y1 = 0;
  bool any = false;
  for (const auto& sv : spec["series"].toArray()) {
    const QJsonObject s = sv.toObject();
    QXYSeries* series = scatter ? static_cast<QXYSeries*>(new QScatterSeries) : new QLineSeries;
    series->setName(s["name"].toString());
    if (s.contains("color")) series->setColor(QColor(s["color"].toString()));
    if (scatter) static_cast<QScatterSeries*>(series)->setMarkerSize(7);
    else series->setPointsVisible(true);
    for (const auto& pv : s["points"].toArray()) {
      const QJsonArray p = pv.toArray();
      if (p.size() != 2) fail("series '" + s["name"].toString() + "': each point is [x, y]");
      const double x = p[0].toDouble(), y = p[1].toDouble();
      series->append(x, y);
      x0 = any ? std::min(x0, x) : x, x1 = any ? std::max(x1, x) : x;
      y0 = any ? std::min(y0, y) : y, y1 = any ? std::max(y1, y) : y;
      any = true;
    }
    chart->addSeries(series);
    series->attachAxis(ax);
    series->attachAxis(ay);
  }
  if (!any) return;
  const auto span = [](QAbstractAxis* a, double lo, double hi) {
    if (auto* v = qobject_cast<QValueAxis*>(a)) {
      const double pad = hi > lo ? 0.05 * (hi - lo) : std::max(1.0, 0.05 * std::abs(hi));
      v->setRange(lo - pad, hi + pad);
      v->applyNiceNumbers();
    } else if (auto* l = qobject_cast<QLogValueAxis*>(a)) {
      l->setRange(lo / 1.3, hi * 1.3);
    }
  };
  span(ax, x0, x1);
  span(ay, y0, y1);
}

void add_bars(QChart* chart, const QJsonObject& spec) {
  auto* bars = new QStackedBarSeries;
  QStringList cats;
  for (const auto& c : spec["categories"].toArray()) cats << c.toString();
  for (const auto& sv : spec["series"].toArray()) {
    const QJsonObject s = sv.toObject();
    auto* set = new QBarSet(s["name"].toString());
    if (s.contains("color")) set->setColor(QColor(s["color"].toString()));
    const QJsonArray values = s["values"].toArray();
    if (values.size() != cats.size()) fail("series '" + s["name"].toString() + "': one value per category");
    for (const auto& v : values) *set << v.toDouble();
    bars->append(set);
  }
  chart->addSeries(bars);
  auto* ax = new QBarCategoryAxis;
  ax->append(cats);
  ax->setTitleText(spec["x_label"].toString());
  auto* ay = new QValueAxis;
  ay->setTitleText(spec["y_label"].toString());
  ay->setLabelFormat("%g");
  chart->addAxis(ax, Qt::AlignBottom);
  chart->addAxis(ay, Qt::AlignLeft);
  bars->attachAxis(ax);
  bars->attachAxis(ay);
}

}  // namespace

int main(int argc, char** argv) {
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  if (argc == 2 && (QString(argv[1]) == "--help" || QString(argv[1]) == "-h")) {
    std::printf("usage: scaleplan-plot SPEC.json OUT.png|OUT.svg (the chart spec is written by scaleplan --plot)\n");
    return 0;
  }
  if (argc != 3) fail("usage: scaleplan-plot SPEC.json OUT.png|OUT.svg");
  QApplication app(argc, argv);
  QFile in(argv[1]);
  if (!in.open(QIODevice::ReadOnly)) fail(QString("cannot read ") + argv[1]);
  QJsonParseError err;
  const QJsonDocument doc = QJsonDocument::fromJson(in.readAll(), &err);
  if (doc.isNull() || !doc.isObject()) fail(QString(argv[1]) + ": not a JSON object (" + err.errorString() + ")");
  const QJsonObject spec = doc.object();
  const QString kind = spec["kind"].toString();

  auto* chart = new QChart;
  const QStringList title = spec["title"].toString().split('\n');
  chart->setTitle(title.size() > 1 ? "<b>" + title[0].toHtmlEscaped() + "</b><br><small>" + title.mid(1).join(' ').toHtmlEscaped() + "</small>"
                                   : title[0]);
  chart->setAnimationOptions(QChart::NoAnimation);
  if (kind == "line" || kind == "scatter") add_xy(chart, spec, kind == "scatter");
  else if (kind == "bar") add_bars(chart, spec);
  else fail("kind must be line, scatter or bar (got '" + kind + "')");
  chart->legend()->setAlignment(Qt::AlignBottom);

  QChartView view(chart);
  view.setRenderHint(QPainter::Antialiasing);
  view.resize(1000, 620);
  const QString out = argv[2];
  if (out.endsWith(".svg", Qt::CaseInsensitive)) {
    QSvgGenerator gen;
    gen.setFileName(out);
    gen.setSize(view.size());
    gen.setViewBox(QRect(QPoint(0, 0), view.size()));
    gen.setTitle(spec["title"].toString());
    QPainter painter;
    if (!painter.begin(&gen)) fail("cannot write " + out);
    view.render(&painter);
    painter.end();
  } else if (out.endsWith(".png", Qt::CaseInsensitive)) {
    if (!view.grab().save(out, "PNG")) fail("cannot write " + out);
  } else {
    fail("the output must end in .png or .svg (got '" + out + "')");
  }
  return 0;
}
