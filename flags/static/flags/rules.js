/* The rules panel: ask before a delete (without JavaScript the button deletes at once). */
"use strict";
{
    document.addEventListener("click", (event) => {
        const button = event.target.closest("button[data-confirm]");
        if (button && !window.confirm(button.dataset.confirm)) {
            event.preventDefault();
        }
    });
}
