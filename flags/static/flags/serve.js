/* The serve widget: show the variant select or the percentages, and keep a running total. */
"use strict";
{
    function setUp(widget) {
        const name = widget.dataset.serve;
        const radios = widget.querySelectorAll(`input[name="${name}_mode"]`);
        const shares = widget.querySelectorAll(`input[name^="${name}_weight_"]`);
        const total = widget.querySelector(".fs-serve__total");
        function refresh() {
            const checked = widget.querySelector(`input[name="${name}_mode"]:checked`);
            widget.dataset.mode = checked ? checked.value : "variant";
            let sum = 0;
            shares.forEach((input) => { sum += Number.parseFloat(input.value || "0") || 0; });
            total.textContent = String(Math.round(sum * 1000) / 1000);
            total.classList.toggle("fs-bad", Math.abs(sum - 100) > 1e-9);
        }
        radios.forEach((radio) => radio.addEventListener("change", refresh));
        shares.forEach((input) => input.addEventListener("input", refresh));
        refresh();
    }
    function ready(fn) {
        if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
    }
    ready(() => document.querySelectorAll(".fs-serve[data-serve]").forEach(setUp));
}
