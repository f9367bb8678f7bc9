-- Order revenue by payment method (kapıda ödeme = cash_on_delivery, havale = bank_transfer)
-- over the last 30 days of November 2025; the `date` filter prunes partitions.
SELECT payment_method, count(*) AS orders, sum(amount) AS revenue
FROM events
WHERE event_type = 'order_created' AND date BETWEEN '2025-11-01' AND '2025-11-30'
GROUP BY 1 ORDER BY 3 DESC;
