// Every word the one-map page draws, in Chinese and English: window.LW.mapText.
//   LW.mapText.t()          -> the dictionary of the current language (LW.lang.current())
//   LW.mapText.county(name) -> a county's name in the current language (the map's data are Chinese)
// Alarm priorities (报警 紧急/高/中/低) are not the legal warning levels (预警 Ⅰ–Ⅳ): docs/alarms.md.
(function () {
  "use strict";
  const TEXT = {
    zh: {
      tier: { red: "紧急", orange: "高", yellow: "中", blue: "低", normal: "正常", offline: "离线" },
      state: { active: "未确认", acknowledged: "已确认", resolved: "已恢复", closed: "已消警", shelved: "已搁置",
               resolvedUnacked: "已恢复·未确认", latched: "已恢复·锁存待确认" },
      family: { hazard: "重大危险源", gas: "气体泄漏", forest: "森林火灾", system: "系统" },
      flag: { chattering: "频繁报警", suppressed: "检修抑制", source_lost: "信号丢失", first_out: "首发" },
      risk: { major: "重大风险", significant: "较大风险", general: "一般风险", low: "低风险" },
      colour: { red: "红色", orange: "橙色", yellow: "黄色", blue: "蓝色" },
      ui: {
        title: "聊城市应急管理一张图", alerts: "当前报警", warnings: "发布中的预警", byAlarms: "按报警着色",
        byRisk: "按风险等级着色", noWarnings: "无", lasting: "持续", ack: "确认", close: "消警", shelve: "搁置",
        unshelve: "解除搁置", link: "链路", ok: "正常", bad: "异常", down: "断开", reconnect: "重连中", stale: "数据过期",
        allFamilies: "全部类别", allCounties: "全部区县", allTiers: "全部优先级", allStates: "全部状态",
        search: "搜索 场所/传感器/报警内容", open: "报警", shelved: "搁置中", selectAll: "全选本页",
        ackSelected: n => `确认所选 (${n})`, clear: "清除选择", page: (p, n) => `第 ${p}/${n} 页`, prev: "上一页",
        next: "下一页", none: "无报警", noMatch: "没有符合条件的报警", alarmsOf: n => `${n} 条`,
        silence: "消音", muted: "已静音", mute: "静音", unmute: "取消静音", enableSound: "启用报警声音",
        notify: "启用桌面通知", soundBlocked: "浏览器阻止了报警声音，请点击“启用报警声音”",
        lost: "数据链路中断，正在重连 — 画面数据可能已过时，请勿据此判断现场状态",
        staleData: age => `数据已过期：最新数据为 ${age} 前 — 请核实采集链路`,
        noData: "尚未收到任何监测数据 — 请核实采集链路", dataAge: age => `数据 ${age}前`, clock: "北京时间", navHistory: "报警历史", navStats: "统计分析",
        legend: "图例", legendAlarms: "报警优先级", legendRisk: "风险等级", legendSymbols: "符号",
        symSite: "场所 (按状态着色)", symUrgent: "紧急报警场所 (闪烁)", symRing: "预警中的对象 (圆环)",
        symArea: "预警影响范围", warning: "预警", category: "类别", level: "级别", start: "开始时间",
        area: "影响范围", watch: "注意事项", measures: "应采取的措施", issuer: "发布机关", issuedAt: "发布时间",
        expires: "截止时间", state: "状态", closeDetail: "关闭", detail: "详情", since: "起",
      },
      age: ["秒", "分钟", "小时", "天"],
    },
    en: {
      tier: { red: "Urgent", orange: "High", yellow: "Medium", blue: "Low", normal: "Normal", offline: "Offline" },
      state: { active: "unacknowledged", acknowledged: "acknowledged", resolved: "resolved", closed: "closed",
               shelved: "shelved", resolvedUnacked: "resolved, unacknowledged", latched: "cleared, latched until acknowledged" },
      family: { hazard: "major hazard", gas: "gas leak", forest: "forest fire", system: "system" },
      flag: { chattering: "chattering", suppressed: "suppressed (maintenance)", source_lost: "source lost", first_out: "first out" },
      risk: { major: "major risk", significant: "significant risk", general: "general risk", low: "low risk" },
      colour: { red: "red", orange: "orange", yellow: "yellow", blue: "blue" },
      ui: {
        title: "Liaocheng Emergency One Map", alerts: "Active alarms", warnings: "Warnings in force",
        byAlarms: "Colour by alarms", byRisk: "Colour by risk grade", noWarnings: "none", lasting: "for", ack: "Ack",
        close: "Close", shelve: "Shelve", unshelve: "Unshelve", link: "Link", ok: "OK", bad: "degraded", down: "down",
        reconnect: "reconnecting", stale: "data stale", allFamilies: "All families", allCounties: "All counties",
        allTiers: "All priorities", allStates: "All states", search: "Search site / sensor / message", open: "Alarms",
        shelved: "Shelved", selectAll: "Select page", ackSelected: n => `Acknowledge selected (${n})`, clear: "Clear",
        page: (p, n) => `page ${p}/${n}`, prev: "Previous", next: "Next", none: "No alarms",
        noMatch: "No alarm matches the filters", alarmsOf: n => `${n} alarm${n === 1 ? "" : "s"}`,
        silence: "Silence", muted: "Muted", mute: "Mute", unmute: "Unmute", enableSound: "Enable alarm sound",
        notify: "Enable notifications", soundBlocked: "The browser blocked the alarm sound: press “Enable alarm sound”",
        lost: "Data link lost, reconnecting — what this screen shows may be out of date; do not rely on it",
        staleData: age => `Data stale: the newest reading is ${age} old — check the acquisition link`,
        noData: "No reading received yet — check the acquisition link", dataAge: age => `data ${age} old`,
        clock: "Beijing time", navHistory: "Alarm history", navStats: "Statistics", legend: "Legend", legendAlarms: "Alarm priority", legendRisk: "Risk grade",
        legendSymbols: "Symbols", symSite: "site (coloured by status)", symUrgent: "site with an urgent alarm (ripple)",
        symRing: "subject of a warning (ring)", symArea: "warning area", warning: "Warning", category: "Category",
        level: "Level", start: "Start", area: "Area", watch: "What to watch", measures: "Measures to take",
        issuer: "Issuer", issuedAt: "Issued", expires: "Expires", state: "State", closeDetail: "Close", detail: "Details",
        since: "since",
      },
      age: [" s", " min", " h", " d"],
    },
  };
  const COUNTY_EN = { "东昌府区": "Dongchangfu", "茌平区": "Chiping", "临清市": "Linqing", "阳谷县": "Yanggu", "莘县": "Shen",
                      "东阿县": "Dong'e", "冠县": "Guan", "高唐县": "Gaotang" };
  window.LW = window.LW || {};
  window.LW.mapText = {
    t: () => TEXT[window.LW.lang.current()],
    county: name => (window.LW.lang.current() === "en" ? COUNTY_EN[name] || name : name),
  };
})();
