// The page language, shared by every page: window.LW.lang (load before the page's own script).
//   LW.lang.current()     -> "zh" (default) or "en", remembered in localStorage
//   LW.lang.set(lang)     -> switch and tell every listener
//   LW.lang.onChange(cb)  -> cb(lang) after every switch
//   LW.lang.pick(obj)     -> obj[lang] falling back to obj.zh (for server-rendered {zh, en} texts)
//   LW.lang.button(el)    -> makes el the 中文/EN switch
(function () {
  "use strict";
  const KEY = "liaowang-lang";
  const listeners = [];
  let lang = localStorage.getItem(KEY) === "en" ? "en" : "zh";
  function set(next) {
    lang = next === "en" ? "en" : "zh";
    localStorage.setItem(KEY, lang);
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    listeners.forEach(cb => { try { cb(lang); } catch (err) { console.error(err); } });
  }
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  window.LW = window.LW || {};
  window.LW.lang = {
    current: () => lang,
    set,
    onChange: cb => listeners.push(cb),
    pick: obj => (obj && (obj[lang] ?? obj.zh)) ?? "",
    button(el) {
      const draw = () => { el.textContent = lang === "en" ? "中文" : "EN"; };
      el.onclick = () => set(lang === "en" ? "zh" : "en");
      listeners.push(draw);
      draw();
    },
  };
})();
