// The card step: Stripe.js tokenises the card in the browser; the server confirms the PaymentIntent with the
// token; a card that needs 3-D Secure is finished here with confirmCardPayment, then the server reads the
// intent back. A declined card keeps the customer on this step with Stripe's message.
(function () {
  const form = document.getElementById('pay-form');
  if (!form) return;
  const stripe = Stripe(form.dataset.publishableKey);
  const card = stripe.elements().create('card');
  card.mount('#card-element');
  const errors = document.getElementById('card-errors');
  const button = document.getElementById('pay-button');
  const csrf = form.querySelector('[name=csrfmiddlewaretoken]').value;

  function fail(message) {
    errors.textContent = message;
    errors.hidden = false;
    button.disabled = false;
  }

  async function post(token) {
    const response = await fetch(form.dataset.confirmUrl, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf},
      body: JSON.stringify({payment: form.dataset.paymentId, token: token}),
    });
    return response.json().catch(() => ({error: 'Something went wrong. Please try again.'}));
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    errors.hidden = true;
    try {
      const made = await stripe.createToken(card);
      if (made.error) return fail(made.error.message || 'Please check your card details.');
      let answer = await post(made.token.id);
      if (answer.status === 'requires_action') {
        const done = await stripe.confirmCardPayment(answer.client_secret);
        if (done.error) return fail(done.error.message || 'Your card could not be authenticated.');
        answer = await post('');
      }
      if (answer.status === 'succeeded') {
        window.location.assign(answer.next);
        return;
      }
      if (answer.payment) form.dataset.paymentId = answer.payment;
      fail(answer.error || 'Your payment has not gone through. Please try again.');
    } catch (err) {
      fail('We could not reach our payment provider. Please try again.');
    }
  });
})();
