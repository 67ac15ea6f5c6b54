-- name: OrderLineInsert :batchexec
INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price, line_total)
VALUES (@order_id, @line_no, @product_id, @quantity, @unit_price, @line_total);

-- name: OrderLineList :many
SELECT * FROM order_lines WHERE order_id = @order_id ORDER BY line_no;

-- name: OrderLineSoldByProduct :many
SELECT order_lines.product_id, sum(order_lines.quantity)::bigint AS sold
FROM order_lines
JOIN orders ON orders.id = order_lines.order_id
WHERE orders.status <> 'cancelled'
GROUP BY order_lines.product_id
ORDER BY order_lines.product_id;
