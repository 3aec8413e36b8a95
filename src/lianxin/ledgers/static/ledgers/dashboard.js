// The figures dashboard and the campaign page: ECharts, served from node_modules (no CDN).
(function () {
  "use strict";
  if (!window.echarts) return;
  function make(id, option) {
    var el = document.getElementById(id);
    if (!el) return;
    var chart = echarts.init(el, null, {renderer: "canvas"});
    chart.setOption(Object.assign({animation: false, tooltip: {trigger: "axis"}, grid: {left: 48, right: 16, top: 36, bottom: 40}}, option));
    window.addEventListener("resize", function () { chart.resize(); });
  }
  var node = document.getElementById("chart-data");
  if (node) {
    var d = JSON.parse(node.textContent);
    make("chart-daily", {
      legend: {data: [d.t.visits, d.t.alerts], top: 0},
      xAxis: {type: "category", data: d.days},
      yAxis: {type: "value", minInterval: 1},
      series: [
        {name: d.t.visits, type: "bar", data: d.visits, itemStyle: {color: "#1e8449"}},
        {name: d.t.alerts, type: "line", data: d.alerts, itemStyle: {color: "#c0392b"}}
      ]
    });
    var series = d.outcomes.map(function (o) { return {name: o.name, type: "bar", stack: "k", data: o.data}; });
    series.push({name: d.t.open, type: "bar", stack: "k", data: d.open, itemStyle: {color: "#bbb"}});
    make("chart-kinds", {
      legend: {top: 0, type: "scroll"},
      grid: {left: 110, right: 16, top: 40, bottom: 24},
      xAxis: {type: "value", minInterval: 1},
      yAxis: {type: "category", data: d.kinds},
      series: series
    });
    make("chart-response", {
      legend: {data: [d.t.median, d.t.p90], top: 0},
      xAxis: {type: "category", data: d.response.labels},
      yAxis: {type: "value", name: d.t.minutes},
      series: [
        {name: d.t.median, type: "bar", data: d.response.median, itemStyle: {color: "#2e86c1"}},
        {name: d.t.p90, type: "bar", data: d.response.p90, itemStyle: {color: "#d68910"}}
      ]
    });
  }
  var camp = document.getElementById("campaign-data");
  if (camp) {
    var c = JSON.parse(camp.textContent);
    make("chart-campaign", {
      legend: {data: [c.t.restored, c.t.members], top: 0},
      xAxis: {type: "category", data: c.days},
      yAxis: [{type: "value"}, {type: "value", minInterval: 1}],
      series: [
        {name: c.t.restored, type: "bar", data: c.restored, itemStyle: {color: "#1e8449"}},
        {name: c.t.members, type: "line", yAxisIndex: 1, data: c.members, itemStyle: {color: "#2e86c1"}}
      ]
    });
  }
})();
